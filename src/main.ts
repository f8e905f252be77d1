#!/usr/bin/env bun
// onacc's entry point: `onacc [clamonacc flags]` runs the agent; `onacc setup` runs the wizard;
// `onacc status` asks a running agent how it is doing; `onacc quarantine` lists and restores quarantined files.
// Kept at the top of src/: compiled Workers are resolved relative to this file. Errors are typed and
// caught once here, where each becomes one line and an exit code (stack traces only with --verbose).
import { defineCommand, runCommand } from "citty";
import { parseRunArgs, runArgsDef } from "./cli/args.ts";
import { helpText } from "./cli/help.ts";
import { pingClamd, runAgent, versionText } from "./cli/run.ts";
import { ExitCode, OnaccError, exitCodeFor } from "./errors.ts";
import { VERSION } from "./version.ts";

// citty drops a subcommand's return value; each command records its exit code here instead.
let exitCode: number = ExitCode.ok;

const run = defineCommand({
  meta: { name: "run", description: "Run the on-access agent (the default; clamonacc's flags)" },
  async run({ rawArgs }) {
    const opts = parseRunArgs(rawArgs);
    if (opts.help) process.stdout.write(helpText(VERSION));
    else if (opts.version) process.stdout.write(`${await versionText(opts)}\n`);
    else if (opts.pingOnly && opts.ping) exitCode = await pingClamd(opts);
    else exitCode = await runAgent(opts, rawArgs);
  },
});

const setup = defineCommand({
  meta: { name: "setup", description: "Write a configuration interactively (or with --yes and flags)" },
  async run({ rawArgs }) {
    // Loaded on demand: the wizard's prompt library is not worth memory in the long-running agent.
    const { runSetup } = await import("./cli/setup.ts");
    exitCode = await runSetup(rawArgs);
  },
});

const status = defineCommand({
  meta: { name: "status", description: "Show a running onacc's clamd health, counters and latency" },
  async run({ rawArgs }) {
    const { runStatus } = await import("./cli/status.ts");
    exitCode = await runStatus(rawArgs);
  },
});

const quarantine = defineCommand({
  meta: { name: "quarantine", description: "List, restore or delete files that --move/--copy quarantined" },
  async run({ rawArgs }) {
    const { runQuarantine } = await import("./cli/quarantine.ts");
    exitCode = await runQuarantine(rawArgs);
  },
});

const reload = defineCommand({
  meta: { name: "reload", description: "Make a running onacc read its configuration again, and say whether it took" },
  async run({ rawArgs }) {
    const { runReload } = await import("./cli/reload.ts");
    exitCode = await runReload(rawArgs);
  },
});

const main = defineCommand({
  meta: { name: "onacc", version: VERSION },
  // Tells citty which flags take a value, so `onacc -c FILE setup` still finds the subcommand.
  args: runArgsDef,
  subCommands: { run, setup, status, quarantine, reload },
  default: "run",
});

async function start(argv: string[]): Promise<number> {
  const verbose = argv.some((a) => a === "--verbose" || /^-[A-Za-z]*v/.test(a));
  try {
    await runCommand(main, { rawArgs: argv });
    return exitCode;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`onacc: ${message}\n`);
    if (verbose && err instanceof Error && !(err instanceof OnaccError && err.code === "E_USAGE")) process.stderr.write(`${err.stack}\n`);
    // citty's own errors (an unknown subcommand) are usage errors too.
    const code = (err as { code?: string }).code;
    if (typeof code === "string" && code.startsWith("E_UNKNOWN")) return ExitCode.usage;
    return exitCodeFor(err);
  }
}

process.exit(await start(process.argv.slice(2)));
