// The text of `onacc --help`: every flag with its short form (from RUN_FLAGS, so it cannot drift from
// the parser), a usage example, the subcommands and the exit codes.
import { ExitCode } from "../errors.ts";
import { ONACC_OPTION_NAMES } from "../config/onacc-options.ts";
import { RUN_FLAGS } from "./args.ts";
import { DEFAULT_CONFIG_FILE } from "./options.ts";

// Keyed by ExitCode's names, so a new exit code does not compile until it is explained here.
const _EXIT_CODE_MEANINGS: Record<keyof typeof ExitCode, string> = {
  ok: "success (also after --help, --version, and a --ping that got an answer)",
  runtime: "the agent failed while running, or clamd did not answer --ping/--wait",
  usage: "bad command line",
  config: "bad configuration file or list file",
  clamd: "clamd needed at start-up but unreachable",
};

const _SUBCOMMANDS: ReadonlyArray<[string, string]> = [
  ["onacc setup", "Interactive setup: write a configuration and check it against clamd"],
  ["onacc status", "Show whether onacc is running and whether clamd answers"],
  ["onacc quarantine", "List, restore or delete quarantined files (list, restore ID, delete ID)"],
];

export function helpText(version: string): string {
  const flagColumn = RUN_FLAGS.map((f) => {
    const long = `--${f.long}${f.value ? `=${f.value}` : ""}`;
    const short = f.short ? `-${f.short}${f.value ? ` ${f.value}` : ""}` : "";
    return [long, short, f.description] as const;
  });
  const longWidth = Math.max(...flagColumn.map(([long]) => long.length));
  const shortWidth = Math.max(...flagColumn.map(([, short]) => short.length));
  const commandWidth = Math.max(..._SUBCOMMANDS.map(([name]) => name.length));

  return [
    `onacc ${version}: on-access malware scanning with ClamAV's clamd (a drop-in successor to clamonacc)`,
    "",
    "Usage:",
    "  onacc [options]",
    ..._SUBCOMMANDS.map(([name, text]) => `  ${name.padEnd(commandWidth)}   ${text}`),
    "",
    "Options:",
    ...flagColumn.map(([long, short, text]) => `  ${long.padEnd(longWidth)}  ${short.padEnd(shortWidth)}  ${text}`),
    "",
    `Settings (socket, OnAccess* options) come from ${DEFAULT_CONFIG_FILE} or --config-file; onacc-only`,
    `options (${[...ONACC_OPTION_NAMES].join(", ")}) also from --config-dir,`,
    "never from a file clamd reads (clamd refuses options it does not know).",
    "Relative FILE and DIRECTORY paths are taken from the current directory.",
    "",
    "Example:",
    "  onacc --foreground --log=/var/log/clamav/onacc.log --move=/root/quarantine",
    "",
    "Exit codes:",
    ...Object.entries(ExitCode).map(([name, code]) => `  ${code}  ${_EXIT_CODE_MEANINGS[name as keyof typeof ExitCode]}`),
    "",
  ].join("\n");
}
