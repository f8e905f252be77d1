// The interactive `onacc setup` (@clack/prompts): one question per answer, each checked as it is typed
// (the prompt says what is wrong and asks again), then a preview, the file, and the service.
import { existsSync } from "node:fs";
import * as p from "@clack/prompts";
import type { ActionOnFound } from "../actions/types.ts";
import { describeEndpoint } from "../clamd/address.ts";
import type { ClamdEndpoint } from "../config/types.ts";
import { VERSION } from "../version.ts";
import {
  actionProblem,
  DEFAULT_QUARANTINE,
  DEFAULT_THREADS,
  excludeListProblem,
  parseAction,
  parseThreads,
  parseYesNo,
  protectListProblem,
  quarantineProblem,
  splitList,
  userListProblem,
  type SetupAnswers,
} from "./answers.ts";
import { parseClamdAddress, probeClamd, unreachableHint, type LocalClamdConf } from "./clamd.ts";
import { finishSetup, trialClosingLines, type Reporter } from "./finish.ts";
import { choicesFor, chosenByAddress, clamdAnswers, defaultExcludedUsers, type ChosenClamd } from "./from-flags.ts";
import type { SetupFlags } from "./options.ts";
import { renderConfig } from "./write.ts";

/** Ctrl-C or Escape on a prompt: nothing has been written. */
export class SetupCancelled extends Error {
  constructor() {
    super("Setup cancelled: nothing was written");
    this.name = "SetupCancelled";
  }
}

/** How long the wizard waits for clamd's VERSION before saying it does not answer. */
const PROBE_TIMEOUT_MS = 3000;

const _reporter: Reporter = {
  info: (m) => p.log.info(m),
  success: (m) => p.log.success(m),
  warn: (m) => p.log.warn(m),
};

/** Runs the wizard; returns the exit code. Throws SetupCancelled when the person cancels. */
export async function runWizard(flags: SetupFlags): Promise<number> {
  p.intro(`onacc ${VERSION} setup`);
  const clamd = await _askClamd(flags);
  const protect = await _askProtect(flags);
  const excludePaths = await _askExcludePaths(flags, protect);
  const prevention = await _askPrevention(flags);
  const excludeUsers = await _askExcludedUsers(flags, clamd.conf);
  const action = await _askAction(flags, protect, prevention);
  const threads = await _askThreads(flags);

  const answers: SetupAnswers = { ...clamdAnswers(clamd, flags.systemdDir), protect, excludePaths, prevention, excludeUsers, action, threads };

  const { configPath, force } = await _askConfigPath(flags);
  p.note(renderConfig(answers, configPath).trimEnd(), configPath);
  if (!(await _ask(p.confirm({ message: `Write ${configPath}?`, initialValue: true })))) throw new SetupCancelled();

  const result = await finishSetup(answers, {
    configPath,
    force,
    systemdDir: flags.systemdDir,
    noService: flags.noService,
    report: _reporter,
    confirmStart: () => _ask(p.confirm({ message: "Enable onacc at boot and start it now?", initialValue: true })),
  });
  if (clamd.trial) p.note(trialClosingLines(answers).join("\n"), "Trial clamd (EICAR test signature only)");
  p.outro(result.serviceStarted ? "onacc is protecting your files." : "Done.");
  return result.serviceError === undefined ? 0 : 1;
}

/** A prompt's answer, or SetupCancelled. */
async function _ask<T>(prompt: Promise<T>): Promise<Exclude<T, symbol>> {
  const value = await prompt;
  if (p.isCancel(value)) throw new SetupCancelled();
  return value as Exclude<T, symbol>;
}

async function _askClamd(flags: SetupFlags): Promise<ChosenClamd> {
  const { conf, choices } = choicesFor(flags);
  if (flags.clamd !== undefined) {
    const endpoint = parseClamdAddress(flags.clamd);
    if (typeof endpoint === "string") {
      p.log.warn(`--clamd: ${endpoint}`);
    } else if (flags.skipClamdCheck) {
      p.log.info(`clamd: ${describeEndpoint(endpoint)} (not checked: --skip-clamd-check)`);
      return chosenByAddress(endpoint, choices, conf);
    } else {
      const probe = await probeClamd(endpoint, PROBE_TIMEOUT_MS);
      if (probe.ok) {
        p.log.success(`clamd ${probe.version} answers at ${describeEndpoint(endpoint)}`);
        return chosenByAddress(endpoint, choices, conf, probe.version);
      }
      p.log.warn(`--clamd ${flags.clamd}: ${probe.message}`);
    }
  }

  const probes = [];
  for (const choice of choices) {
    const probe = choice.unusable !== undefined ? { ok: false as const, message: choice.unusable } : await probeClamd(choice.endpoint, PROBE_TIMEOUT_MS);
    probes.push({ choice, probe });
  }
  const reachable = probes.flatMap((c) => (c.probe.ok ? [{ ...c.choice, version: c.probe.version }] : []));

  if (reachable.length > 0) {
    const OTHER = -1;
    const choice = await _ask(
      p.select<number>({
        message: "Which clamd should onacc ask for verdicts?",
        options: [
          ...reachable.map((r, i) => ({ value: i, label: describeEndpoint(r.endpoint), hint: r.trial ? `trial clamd, EICAR test signature only (${r.version})` : r.version })),
          ...probes
            .filter((c) => !c.probe.ok)
            .map((c) => ({ value: OTHER - 1, label: describeEndpoint(c.choice.endpoint), hint: c.choice.unusable !== undefined ? "no signature database" : "not answering", disabled: true })),
          { value: OTHER, label: "Another socket path or host:port" },
        ],
        initialValue: 0,
      }),
    );
    const chosen = reachable[choice];
    if (chosen !== undefined) {
      p.log.success(`clamd ${chosen.version} answers at ${describeEndpoint(chosen.endpoint)}`);
      const out: ChosenClamd = { endpoint: chosen.endpoint, version: chosen.version, trial: chosen.trial };
      if (chosen.conf !== undefined) out.conf = chosen.conf;
      return out;
    }
  } else if (choices.length > 0) {
    const why = probes.find((c) => c.choice.unusable !== undefined)?.choice.unusable;
    p.log.warn(`clamd does not answer at ${choices.map((c) => describeEndpoint(c.endpoint)).join(", ")}. ${why !== undefined ? `${why}.` : unreachableHint(conf)}`);
  } else {
    p.log.warn(`No clamd socket found (${conf ? `${flags.clamdConf} names none` : `cannot read ${flags.clamdConf}`}). ${unreachableHint(conf)}`);
  }

  let version: string | undefined;
  const typed = await _ask(
    p.text({
      message: "clamd's socket path, or host:port for clamd over TCP",
      placeholder: "/run/clamav/clamd.ctl or 192.0.2.10:3310",
      validate: async (value) => {
        const endpoint = parseClamdAddress(value ?? "");
        if (typeof endpoint === "string") return endpoint;
        if (flags.skipClamdCheck) return undefined;
        const probe = await probeClamd(endpoint, PROBE_TIMEOUT_MS);
        if (!probe.ok) return `${probe.message} (a clamd must answer here; Ctrl-C to stop, then see onacc setup --trial)`;
        version = probe.version;
        return undefined;
      },
    }),
  );
  const endpoint = parseClamdAddress(typed) as ClamdEndpoint;
  if (version !== undefined) p.log.success(`clamd ${version} answers at ${describeEndpoint(endpoint)}`);
  return chosenByAddress(endpoint, choices, conf, version);
}

async function _askProtect(flags: SetupFlags): Promise<string[]> {
  if (flags.protect !== undefined) {
    const problem = protectListProblem(flags.protect);
    if (problem === undefined) {
      p.log.info(`Protecting ${flags.protect.join(", ")}`);
      return flags.protect;
    }
    p.log.warn(`--protect: ${problem}`);
  }
  const text = await _ask(
    p.text({
      message: "Which directories should onacc protect? (absolute paths, separated by commas)",
      placeholder: "/srv/data, /home",
      validate: (value) => protectListProblem(splitList(value ?? "")),
    }),
  );
  return splitList(text);
}

async function _askExcludePaths(flags: SetupFlags, protect: string[]): Promise<string[]> {
  if (flags.excludePaths !== undefined) {
    const problem = excludeListProblem(flags.excludePaths, protect);
    if (problem === undefined) return flags.excludePaths;
    p.log.warn(`--exclude-path: ${problem}`);
  }
  const text = await _ask(
    p.text({
      message: "Directories inside them to leave unscanned? (optional, separated by commas)",
      placeholder: "Enter for none",
      validate: (value) => excludeListProblem(splitList(value ?? ""), protect),
    }),
  );
  return splitList(text ?? "");
}

async function _askPrevention(flags: SetupFlags): Promise<boolean> {
  if (flags.prevention !== undefined) {
    const given = parseYesNo(flags.prevention, "--prevention");
    if (typeof given === "boolean") return given;
    p.log.warn(given);
  }
  return await _ask(
    p.confirm({
      message: "Block access to infected files? (No: only report them)",
      initialValue: true,
    }),
  );
}

async function _askExcludedUsers(flags: SetupFlags, conf: LocalClamdConf | undefined): Promise<string[]> {
  if (flags.excludeUsers !== undefined) {
    const problem = userListProblem(flags.excludeUsers);
    if (problem === undefined) return flags.excludeUsers;
    p.log.warn(`--exclude-user: ${problem}`);
  }
  const suggested = defaultExcludedUsers(conf);
  const text = await _ask(
    p.text({
      message: `Users whose file accesses are not scanned? (separated by commas${suggested.length > 0 ? "; clamd runs as " + suggested.join(", ") + " and must never wait for onacc" : ""})`,
      initialValue: suggested.join(", "),
      placeholder: "Enter for none",
      validate: (value) => userListProblem(splitList(value ?? "")),
    }),
  );
  return splitList(text ?? "");
}

async function _askAction(flags: SetupFlags, protect: string[], prevention: boolean): Promise<ActionOnFound> {
  if (flags.action !== undefined) {
    const given = parseAction(flags.action);
    const problem = typeof given === "string" ? given : actionProblem(given, protect);
    if (problem === undefined) return given as ActionOnFound;
    p.log.warn(`--action: ${problem}`);
  }
  const kind = await _ask(
    p.select<ActionOnFound["kind"]>({
      message: "What should happen to an infected file?",
      options: [
        { value: "none", label: "Nothing more", hint: prevention ? "it stays blocked, and is logged" : "it is logged" },
        { value: "move", label: "Move it to a quarantine directory" },
        { value: "copy", label: "Copy it to a quarantine directory", hint: "the original stays" },
        { value: "remove", label: "Delete it", hint: "careful: there is no undo" },
      ],
      initialValue: "none",
    }),
  );
  if (kind === "none" || kind === "remove") return { kind };
  const dir = await _ask(
    p.text({
      message: `Quarantine directory (created with mode 0700 when missing)`,
      initialValue: DEFAULT_QUARANTINE,
      validate: (value) => quarantineProblem((value ?? "").trim(), protect),
    }),
  );
  return parseAction(`${kind}:${dir.trim()}`) as ActionOnFound;
}

async function _askThreads(flags: SetupFlags): Promise<number> {
  if (flags.threads !== undefined) {
    const given = parseThreads(flags.threads);
    if (typeof given === "number") return given;
    p.log.warn(`--threads: ${given}`);
  }
  const text = await _ask(
    p.text({
      message: "How many files may be scanned at the same time? (OnAccessMaxThreads)",
      initialValue: String(DEFAULT_THREADS),
      validate: (value) => {
        const n = parseThreads(value ?? "");
        return typeof n === "string" ? n : undefined;
      },
    }),
  );
  return parseThreads(text) as number;
}

/** Where to write; an existing file is replaced only after a yes (or with --force). */
async function _askConfigPath(flags: SetupFlags): Promise<{ configPath: string; force: boolean }> {
  let configPath = flags.config;
  let askPath = !flags.configGiven;
  for (;;) {
    if (askPath) {
      configPath = (
        await _ask(
          p.text({
            message: "Where should the configuration be written?",
            initialValue: configPath,
            validate: (value) => ((value ?? "").trim().startsWith("/") ? undefined : "Give an absolute path (starting with /)"),
          }),
        )
      ).trim();
    }
    if (flags.force || !existsSync(configPath)) return { configPath, force: flags.force };
    const replace = await _ask(p.confirm({ message: `${configPath} already exists. Replace it?`, initialValue: false }));
    if (replace) return { configPath, force: true };
    askPath = true;
  }
}
