// Test-only entry for `onacc setup` (the wizard and --yes), run as `bun tests/ship/setup-entry.ts ARGS`
// until the tests can use dist/onacc setup.
import { runSetup } from "../../src/cli/setup.ts";

process.exit(await runSetup(process.argv.slice(2)));
