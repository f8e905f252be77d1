// The agent's side of `onacc status --check`: which files it accepts as test files, how scanners know
// them, and that nothing is left behind — also when a check is abandoned half-way.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ProbeCheck, ProbeRegistry, SELF_TEST_GRACE_MS, SELF_TEST_TTL_MS, SelfTest, probeIdentity } from "../../src/engine/self-test.ts";

let root = "";
beforeAll(() => {
  root = mkdtempSync("/tmp/onacc-selftest-");
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function service(tree: string) {
  let now = 1_000_000;
  const registry = ProbeRegistry.create();
  const warnings: string[] = [];
  const st = new SelfTest({
    registry,
    trees: () => [tree],
    prevention: true,
    denyOnError: false,
    rootExcluded: false,
    endpoints: () => [],
    log: { warn: (m) => void warnings.push(m), verbose: () => {} },
    now: () => now,
  });
  return { st, registry, warnings, advance: (ms: number) => void (now += ms) };
}

function freshTree(): string {
  const t = join(root, `tree-${Math.random().toString(36).slice(2)}`);
  mkdirSync(t);
  return t;
}

/** Creates the test file the way the checker does: O_EXCL, 0600, empty. */
function createProbe(path: string): void {
  closeSync(openSync(path, "wx", 0o600));
}

/** A service with one check begun and its test file created and registered in a fresh tree. */
function registeredProbe() {
  const tree = freshTree();
  const s = service(tree);
  const b = s.st.begin();
  const path = join(tree, b.probeName);
  createProbe(path);
  s.st.probe(b.nonce, path);
  return { ...s, tree, b, path };
}

describe("SelfTest", () => {
  test("a registered test file is known to the scanners, then removed by end(); a file only named like it is not", () => {
    const tree = freshTree();
    const { st, registry } = service(tree);
    const b = st.begin();
    expect(b.probeName).toBe(`.onacc-selftest-${b.nonce}`);
    expect(b.nonce).toMatch(/^[0-9a-f]{32}$/);
    const path = join(tree, b.probeName);
    createProbe(path);
    st.probe(b.nonce, path);
    writeFileSync(path, "test signature would go here");
    const check = new ProbeCheck(registry.sab);
    const fd = openSync(path, "r");
    expect(check.isProbe(fd)).toBe(true);
    closeSync(fd);
    // Same name in another directory, same content: an ordinary file.
    const other = join(freshTree(), b.probeName);
    writeFileSync(other, "test signature would go here");
    const fd2 = openSync(other, "r");
    expect(check.isProbe(fd2)).toBe(false);
    closeSync(fd2);
    expect(st.end(b.nonce)).toEqual([{ path, detections: 1, removed: true }]);
    expect(existsSync(path)).toBe(false);
    expect(() => st.end(b.nonce)).toThrow("unknown or expired self-test");
  });

  test("a test file stays known for the grace period after the check ends, then not at all", () => {
    const { st, registry, advance, b, path } = registeredProbe();
    const fd = openSync(path, "r"); // a scan still holding the file when the check ends
    const check = new ProbeCheck(registry.sab);
    st.end(b.nonce);
    expect(check.isProbe(fd)).toBe(true);
    advance(SELF_TEST_GRACE_MS + 1);
    st.sweep();
    expect(check.isProbe(fd)).toBe(false);
    closeSync(fd);
  });

  test("only a fresh, empty, root-owned 0600 regular file with one link, named for this nonce, directly in a tree is accepted", () => {
    const tree = freshTree();
    const { st } = service(tree);
    const b = st.begin();
    const name = b.probeName;
    const refuse = (path: string, message: string | RegExp) => expect(() => st.probe(b.nonce, path)).toThrow(message);
    refuse(join(tree, "sub", name), "not directly inside a protected tree");
    refuse(join(root, name), "not directly inside a protected tree");
    refuse(join(tree, ".onacc-selftest-0000"), "is not named");
    refuse(`${tree}/../${name}`, "not a normalized absolute path");
    refuse(join(tree, name), "ENOENT");
    writeFileSync(join(tree, name), "content", { mode: 0o600 });
    refuse(join(tree, name), "not a freshly created test file");
    rmSync(join(tree, name));
    writeFileSync(join(tree, name), "", { mode: 0o644 });
    refuse(join(tree, name), "not a freshly created test file");
    rmSync(join(tree, name));
    createProbe(join(root, "elsewhere"));
    symlinkSync(join(root, "elsewhere"), join(tree, name));
    refuse(join(tree, name), "not a freshly created test file");
    rmSync(join(tree, name));
    linkSync(join(root, "elsewhere"), join(tree, name));
    refuse(join(tree, name), "not a freshly created test file");
    rmSync(join(tree, name));
    expect(() => st.probe("0".repeat(32), join(tree, name))).toThrow("unknown or expired self-test");
    createProbe(join(tree, name));
    st.probe(b.nonce, join(tree, name));
    expect(() => st.probe(b.nonce, join(tree, name))).toThrow("registered already");
    st.end(b.nonce);
  });

  test("an abandoned check's test files are unregistered and removed by the sweep", () => {
    const { st, registry, advance, b, path } = registeredProbe();
    advance(SELF_TEST_TTL_MS + 1);
    st.sweep();
    expect(existsSync(path)).toBe(false);
    expect(() => st.probe(b.nonce, path)).toThrow("unknown or expired");
    advance(SELF_TEST_GRACE_MS + 1);
    st.sweep();
    createProbe(path);
    const fd = openSync(path, "r");
    expect(new ProbeCheck(registry.sab).isProbe(fd)).toBe(false);
    closeSync(fd);
    rmSync(path);
  });

  test("end() never removes another file that took the test file's name", () => {
    const tree = freshTree();
    const { st } = service(tree);
    const b = st.begin();
    const path = join(tree, b.probeName);
    createProbe(path);
    st.probe(b.nonce, path);
    rmSync(path);
    writeFileSync(path, "someone else's file");
    expect(st.end(b.nonce)).toEqual([{ path, detections: 0, removed: false }]);
    expect(existsSync(path)).toBe(true);
  });
});

describe("ProbeRegistry", () => {
  test("a file is known by device, inode and birth time: the same inode number born later is another file", () => {
    const r = ProbeRegistry.create();
    const f = join(root, "id");
    writeFileSync(f, "");
    const id = probeIdentity(lstatSync(f, { bigint: true }));
    r.register(id);
    expect(r.detected(id)).toBe(true);
    expect(r.detected({ ...id, birthNsec: id.birthNsec + 1 })).toBe(false);
    expect(r.detected({ ...id, birthSec: id.birthSec + 1 })).toBe(false);
    expect(r.detected({ ...id, dev: id.dev + 1 })).toBe(false);
  });
});
