// `onacc setup --trial`: a private clamd with one test signature (the EICAR test file), for hosts where no
// signature database can be downloaded, so a newcomer can still watch onacc block something.
import { chownSync, mkdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { serializeConfig } from "../config/serialize.ts";
import { uidOfUser } from "../../ffi/process.ts";
import { ConfigExistsError, fileHasText, replaceTextFile, writeConfigFile } from "./write.ts";

export const TRIAL_DEFAULTS = {
  database: "/var/lib/onacc/trial-db",
  config: "/etc/onacc/trial-clamd.conf",
  // Not /run/onacc: that is the service's RuntimeDirectory (root's, emptied whenever onacc stops).
  socket: "/run/onacc-trial/clamd.sock",
} as const;

/** The trial clamd's own unit (written by setup when systemd runs), which onacc.service is ordered after. */
export const TRIAL_UNIT = "onacc-trial-clamd.service";

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

export interface TrialFiles extends TrialPaths {
  /** The user clamd runs as (clamav when that user exists, else root). */
  user: string;
  /** The config file already existed and was kept (written again only with --force). */
  keptConfig: boolean;
  /** The database file was written now (false: it already held the signature). */
  wroteDatabase: boolean;
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
      { name: "LocalSocket", value: paths.socket, comment: "onacc connects here (onacc setup offers it)" },
      { name: "LocalSocketMode", value: "660" },
      { name: "FixStaleSocket", value: true },
      { name: "DatabaseDirectory", value: paths.database, comment: "One signature only: the EICAR test file" },
      { name: "PidFile", value: trialPidFile(paths) },
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

export function trialPidFile(paths: TrialPaths): string {
  return join(dirname(paths.socket), "trial-clamd.pid");
}

/**
 * Writes the trial database (when it does not already hold the signature: it is onacc's own file) and the
 * trial clamd.conf (kept when it exists, unless `force`), and creates the socket's directory owned by
 * clamd's user. A second run with the same paths changes nothing.
 */
export function writeTrial(paths: TrialPaths, opts: { force: boolean; user?: string }): TrialFiles {
  const user = opts.user ?? (uidOfUser("clamav") !== undefined ? "clamav" : "root");
  const uid = uidOfUser(user);
  mkdirSync(paths.database, { recursive: true, mode: 0o755 });
  const dbFile = join(paths.database, TRIAL_DATABASE_FILE);
  const dbText = `${trialSignatureLine()}\n`;
  const wroteDatabase = !fileHasText(dbFile, dbText);
  if (wroteDatabase) replaceTextFile(dbFile, dbText);

  let keptConfig = false;
  try {
    writeConfigFile(paths.config, renderTrialClamdConf(paths, user), { force: opts.force });
  } catch (err) {
    if (!(err instanceof ConfigExistsError)) throw err;
    keptConfig = true;
  }

  // clamd creates its socket and PID file after dropping to `user` (under systemd, RuntimeDirectory= does).
  const runDir = dirname(paths.socket);
  mkdirSync(runDir, { recursive: true, mode: 0o755 });
  if (uid !== undefined) chownSync(runDir, uid, -1);

  return { ...paths, user, keptConfig, wroteDatabase };
}

/**
 * The trial clamd's unit: clamd in the foreground as `user`, its socket directory made by systemd, and
 * "active" only once it answers (ExecStartPost pings it), so onacc.service ordered after it starts against
 * a clamd that is ready.
 */
export function renderTrialUnit(paths: TrialPaths, opts: { user: string; clamd: string; onacc: string }): string {
  const runDir = dirname(paths.socket);
  const lines = [
    "# Written by `onacc setup --trial`: a clamd that knows one test signature (the EICAR test file), for",
    "# trying onacc on a host without a signature database. It protects against nothing real.",
    `# Remove it with: systemctl disable --now ${TRIAL_UNIT}, then delete this file.`,
    "[Unit]",
    "Description=Trial clamd for onacc (EICAR test signature only)",
    "Before=onacc.service",
    "",
    "[Service]",
    "Type=simple",
    ...(opts.user === "root" ? [] : [`User=${opts.user}`]),
    `ExecStart=${opts.clamd} --foreground=true --config-file=${paths.config}`,
    // clamd loads its database before it listens: wait here until it answers (at most a minute).
    `ExecStartPost=${opts.onacc} --ping=60:1 --config-file=${paths.config}`,
    ...(runDir.startsWith("/run/") ? [`RuntimeDirectory=${runDir.slice("/run/".length)}`, "RuntimeDirectoryMode=0755"] : []),
    "Restart=on-failure",
    "RestartSec=2s",
    "NoNewPrivileges=yes",
    "ProtectSystem=full",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ];
  return lines.join("\n");
}
