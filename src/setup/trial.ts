// `onacc setup --trial`: a private clamd with one test signature (the EICAR test file), for hosts where no
// signature database can be downloaded, so a newcomer can still watch onacc block something.
import { chownSync, mkdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { serializeConfig } from "../config/serialize.ts";
import { uidOfUser } from "../../ffi/process.ts";
import { ConfigExistsError, replaceTextFile, writeConfigFile } from "./write.ts";

export const TRIAL_DEFAULTS = {
  database: "/var/lib/onacc/trial-db",
  config: "/etc/onacc/trial-clamd.conf",
  // Not /run/onacc: that is the service's RuntimeDirectory (root's, emptied whenever onacc stops).
  socket: "/run/onacc-trial/clamd.sock",
} as const;

/** The EICAR anti-virus test file: harmless, and every scanner's agreed "this must be detected". */
export const EICAR_TEXT = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/** clamd reports it as "Onacc.Trial.EICAR.UNOFFICIAL FOUND" (custom signatures get that suffix). */
export const TRIAL_SIGNATURE = "Onacc.Trial.EICAR";
export const TRIAL_DATABASE_FILE = "onacc-trial.hdb";

export interface TrialPaths {
  database: string;
  config: string;
  socket: string;
}

export interface TrialResult extends TrialPaths {
  /** What to run, in order, to start the trial clamd and point onacc at it. */
  nextSteps: string[];
  /** The config file already existed and was kept (written again only with --force). */
  keptConfig: boolean;
}

/** An .hdb line: MD5 of the content, its size, the signature name. */
export function trialSignatureLine(): string {
  const content = Buffer.from(EICAR_TEXT, "latin1");
  return `${createHash("md5").update(content).digest("hex")}:${content.length}:${TRIAL_SIGNATURE}`;
}

/** clamd.conf for the trial clamd: its own socket, database and PID file; clamd drops to `user`. */
export function renderTrialClamdConf(paths: TrialPaths, user: string): string {
  return serializeConfig(
    [
      { name: "LocalSocket", value: paths.socket, comment: "onacc connects here (onacc setup --clamd this path)" },
      { name: "LocalSocketMode", value: "660" },
      { name: "FixStaleSocket", value: true },
      { name: "DatabaseDirectory", value: paths.database, comment: "One signature only: the EICAR test file" },
      { name: "PidFile", value: join(dirname(paths.socket), "trial-clamd.pid") },
      { name: "User", value: user },
      { name: "LogSyslog", value: true },
      { name: "MaxThreads", value: 4 },
    ],
    [
      "A trial clamd for onacc, written by `onacc setup --trial`. It knows one signature, the EICAR test",
      "file, so it protects against nothing real: run freshclam and use the system's clamd for that.",
    ].join("\n"),
  );
}

/**
 * Writes the trial database (always: it is onacc's own file) and the trial clamd.conf (kept when it
 * exists, unless `force`), and creates the socket's directory owned by clamd's user.
 */
export function writeTrial(paths: TrialPaths, opts: { force: boolean; user?: string }): TrialResult {
  const user = opts.user ?? (uidOfUser("clamav") !== undefined ? "clamav" : "root");
  const uid = uidOfUser(user);
  mkdirSync(paths.database, { recursive: true, mode: 0o755 });
  replaceTextFile(join(paths.database, TRIAL_DATABASE_FILE), `${trialSignatureLine()}\n`);

  let keptConfig = false;
  try {
    writeConfigFile(paths.config, renderTrialClamdConf(paths, user), { force: opts.force });
  } catch (err) {
    if (!(err instanceof ConfigExistsError)) throw err;
    keptConfig = true;
  }

  // clamd creates its socket and PID file after dropping to `user`.
  const runDir = dirname(paths.socket);
  mkdirSync(runDir, { recursive: true, mode: 0o755 });
  if (uid !== undefined) chownSync(runDir, uid, -1);

  return {
    ...paths,
    keptConfig,
    nextSteps: [
      `mkdir -p ${runDir} && chown ${user} ${runDir}   # only after a reboot: /run is emptied`,
      `clamd -c ${paths.config}   # starts the trial clamd; stop it with: kill $(cat ${join(runDir, "trial-clamd.pid")})`,
      `onacc setup --clamd ${paths.socket}   # protect a directory with it`,
      `printf '%s' '${EICAR_TEXT.replace(/'/g, "'\\''")}' > DIR/eicar.txt; cat DIR/eicar.txt   # blocked: "Operation not permitted"`,
    ],
  };
}
