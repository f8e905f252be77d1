// What `onacc setup` writes, as the configuration layer reads it: clamd's TemporaryDirectory is carried
// into onacc's own file (so onacc never watches it), and the file says where onacc-only options may go.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfigText } from "../../src/config/parse.ts";
import { readLocalClamdConf } from "../../src/setup/clamd.ts";
import { fromClamdConf } from "../../src/setup/from-flags.ts";
import { renderConfig } from "../../src/setup/write.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync("/tmp/onacc-setup-files-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("onacc setup and TemporaryDirectory", () => {
  test("setup copies clamd's TemporaryDirectory into onacc's file, which then loads, mentioning where onacc-only options go", () => {
    const clamdConf = join(dir, "setup-clamd.conf");
    writeFileSync(clamdConf, "LocalSocket /run/clamav/clamd.ctl\ntempdir /var/tmp/clamd-scans\nUser clamav\n");
    const conf = readLocalClamdConf(clamdConf);
    expect(conf?.temporaryDirectory).toBe("/var/tmp/clamd-scans");
    const protect = join(dir, "protect");
    mkdirSync(protect, { recursive: true });
    chmodSync(protect, 0o755);
    const endpoint = { kind: "unix", path: "/run/clamav/clamd.ctl" } as const;
    const text = renderConfig(
      { clamd: endpoint, protect: [protect], excludePaths: [], prevention: true, excludeUsers: [], action: { kind: "none" }, threads: 5, ...fromClamdConf(endpoint, conf) },
      "/etc/onacc/onacc.conf",
    );
    expect(text).toContain("TemporaryDirectory /var/tmp/clamd-scans\n");
    expect(text).toContain("/etc/onacc/onacc.conf.d/*.conf");
    const parsed = parseConfigText(text, "/etc/onacc/onacc.conf");
    expect(parsed.config.temporaryDirectory).toBe("/var/tmp/clamd-scans");
    expect(parsed.config.onAccess.excludePaths).toEqual(["/var/tmp/clamd-scans"]);
    // Another clamd than the one clamd.conf describes: nothing of that file is copied.
    expect(fromClamdConf({ kind: "tcp", host: "10.0.0.9", port: 3310 }, conf)).toEqual({});
  });
});
