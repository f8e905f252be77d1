import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { OnaccError } from "../../src/errors.ts";
import {
  LOG_FILE_MODE,
  LogFileError,
  createLogger,
  type LogSettings,
} from "../../src/log/logger.ts";

const loggerModule = resolve(import.meta.dir, "../../src/log/logger.ts");
const TIMESTAMP = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d`;

let dir: string;
let fileCounter = 0;
const freshLogPath = () => join(dir, `onacc-${++fileCounter}.log`);
const lines = (path: string) => readFileSync(path, "utf8").split("\n").slice(0, -1);

beforeAll(() => {
  dir = mkdtempSync("/tmp/onacc-log-test-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function logEveryLevel(settings: LogSettings): string {
  const log = createLogger(settings);
  log.found(Buffer.from("/srv/eicar.com"), "Onacc.Test.EICAR.UNOFFICIAL");
  log.error("clamd did not answer");
  log.warn("queue is filling up");
  log.info("watching 3 paths");
  log.verbose("scan of fd 7 took 3 ms");
  log.close();
  return settings.logFile!;
}

describe("log file sink", () => {
  test("createLogger() without --verbose writes FOUND, error and warning lines with timestamps, not info or verbose", () => {
    const path = logEveryLevel({ logFile: freshLogPath(), foreground: false, verbose: false });
    const got = lines(path);
    expect(got).toHaveLength(3);
    expect(got[0]).toMatch(new RegExp(`^${TIMESTAMP} -> /srv/eicar\\.com: Onacc\\.Test\\.EICAR\\.UNOFFICIAL FOUND$`));
    expect(got[1]).toMatch(new RegExp(`^${TIMESTAMP} -> ERROR: clamd did not answer$`));
    expect(got[2]).toMatch(new RegExp(`^${TIMESTAMP} -> WARNING: queue is filling up$`));
  });

  test("createLogger() with --verbose writes every level to the file", () => {
    const path = logEveryLevel({ logFile: freshLogPath(), foreground: false, verbose: true });
    const got = lines(path).map((l) => l.replace(new RegExp(`^${TIMESTAMP} -> `), ""));
    expect(got).toEqual([
      "/srv/eicar.com: Onacc.Test.EICAR.UNOFFICIAL FOUND",
      "ERROR: clamd did not answer",
      "WARNING: queue is filling up",
      "watching 3 paths",
      "scan of fd 7 took 3 ms",
    ]);
  });

  test("a FOUND line for a path with a newline and invalid UTF-8 stays one escaped line", () => {
    const path = freshLogPath();
    const log = createLogger({ logFile: path, foreground: false, verbose: false });
    log.found(Buffer.concat([Buffer.from("/tmp/evil\n"), Buffer.from([0xff]), Buffer.from(".exe")]), "Sig.A");
    log.error("multi\nline error");
    log.close();
    const got = lines(path);
    expect(got).toHaveLength(2);
    expect(got[0]).toEndWith(" -> /tmp/evil\\n\\xff.exe: Sig.A FOUND");
    expect(got[1]).toEndWith(" -> ERROR: multi\\nline error");
  });

  test("createLogger() appends to an existing log file and creates a new one with mode 0640 less the umask", () => {
    const existing = freshLogPath();
    writeFileSync(existing, "earlier line\n");
    const log = createLogger({ logFile: existing, foreground: false, verbose: false });
    log.error("later line");
    log.close();
    expect(lines(existing)[0]).toBe("earlier line");
    expect(lines(existing)[1]).toEndWith("ERROR: later line");

    const created = freshLogPath();
    createLogger({ logFile: created, foreground: false, verbose: false }).close();
    expect(statSync(created).mode & 0o777).toBe(LOG_FILE_MODE & ~process.umask());
  });

  test("createLogger() uses the file formatter chosen at creation", () => {
    const path = freshLogPath();
    const log = createLogger(
      { logFile: path, foreground: false, verbose: false },
      { fileFormatter: (r) => JSON.stringify({ level: r.level, message: r.message, found: r.found }) },
    );
    log.found("/srv/x", "Sig.B");
    log.close();
    expect(JSON.parse(lines(path)[0]!)).toEqual({
      level: "found",
      message: "/srv/x: Sig.B FOUND",
      found: { path: "/srv/x", signature: "Sig.B" },
    });
  });

  test("createLogger() throws a LogFileError naming the file and the errno when the directory is missing", () => {
    const path = join(dir, "missing-dir", "onacc.log");
    let caught: unknown;
    try {
      createLogger({ logFile: path, foreground: false, verbose: false });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(LogFileError);
    expect(caught).toBeInstanceOf(OnaccError);
    expect((caught as OnaccError).code).toBe("E_RUNTIME");
    expect((caught as Error).message).toBe(`Cannot open log file "${path}": ENOENT (no such file or directory)`);
  });

  test("createLogger() rejects a directory as log file with EISDIR", () => {
    const path = join(dir, "a-directory");
    mkdirSync(path);
    expect(() => createLogger({ logFile: path, foreground: false, verbose: false })).toThrow(
      `Cannot open log file "${path}": EISDIR (is a directory)`,
    );
  });
});

describe("reopen()", () => {
  test("reopen() after logrotate renamed the file writes to a new file of the same name", () => {
    const path = freshLogPath();
    const log = createLogger({ logFile: path, foreground: false, verbose: false });
    log.error("before rotation");
    renameSync(path, `${path}.1`);
    log.error("after rename, before reopen");
    expect(log.reopen()).toBe(true);
    log.error("after reopen");
    log.close();
    expect(lines(`${path}.1`).map((l) => l.split(" -> ")[1])).toEqual([
      "ERROR: before rotation",
      "ERROR: after rename, before reopen",
    ]);
    expect(lines(path).map((l) => l.split(" -> ")[1])).toEqual(["ERROR: after reopen"]);
  });

  test("reopen() that fails keeps writing to the old file and logs why", () => {
    const sub = join(dir, "rotated-away");
    mkdirSync(sub);
    const path = join(sub, "onacc.log");
    const log = createLogger({ logFile: path, foreground: false, verbose: false });
    renameSync(sub, `${sub}.old`); // the directory itself is gone: the new file cannot be created
    expect(log.reopen()).toBe(false);
    log.error("still logging");
    log.close();
    const got = lines(join(`${sub}.old`, "onacc.log")).map((l) => l.split(" -> ")[1]);
    expect(got).toEqual([`ERROR: Cannot reopen log file "${path}": ENOENT (no such file or directory)`, "ERROR: still logging"]);
  });

  test("reopen() without a log file does nothing and says so", () => {
    expect(createLogger({ foreground: false, verbose: false }).reopen()).toBe(false);
  });
});

// Starts test Workers, each with its own Logger built from the same settings.
async function startWriters(count: number, settings: LogSettings) {
  const workers = Array.from({ length: count }, () => new Worker(new URL("./log-writer.worker.ts", import.meta.url)));
  const ask = (worker: Worker, message: unknown) =>
    new Promise<Record<string, unknown>>((resolveReply, reject) => {
      worker.onmessage = (e) => resolveReply(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage(message);
    });
  await Promise.all(workers.map((w) => ask(w, { cmd: "start", settings })));
  return { workers, ask, stop: () => workers.forEach((w) => w.terminate()) };
}

describe("several writers", () => {
  test("four Workers appending 1000 lines each to one log file produce only whole lines", async () => {
    const path = freshLogPath();
    const { workers, ask, stop } = await startWriters(4, { logFile: path, foreground: false, verbose: false });
    try {
      const replies = await Promise.all(workers.map((w, n) => ask(w, { cmd: "write", tag: `w${n}`, count: 1000 })));
      expect(replies.every((r) => r.failures === 0)).toBe(true);
      await Promise.all(workers.map((w) => ask(w, { cmd: "close" })));
    } finally {
      stop();
    }
    const got = lines(path);
    expect(got).toHaveLength(4000);
    const seen = new Map<string, Set<number>>();
    const shape = new RegExp(`^${TIMESTAMP} -> ERROR: (w\\d) (\\d+) (x*) end$`);
    for (const line of got) {
      const m = shape.exec(line);
      expect(m).not.toBeNull();
      const [, tag, index, padding] = m!;
      expect(padding!.length).toBe((Number(index) * 997) % 12000);
      if (!seen.has(tag!)) seen.set(tag!, new Set());
      seen.get(tag!)!.add(Number(index));
    }
    expect([...seen.keys()].sort()).toEqual(["w0", "w1", "w2", "w3"]);
    for (const indexes of seen.values()) expect(indexes.size).toBe(1000);
  });

  test("a Worker told to reopen its log writes to the new file after rotation", async () => {
    const path = freshLogPath();
    const { workers, ask, stop } = await startWriters(2, { logFile: path, foreground: false, verbose: false });
    try {
      await Promise.all(workers.map((w, n) => ask(w, { cmd: "write", tag: `old${n}`, count: 2 })));
      renameSync(path, `${path}.1`);
      const replies = await Promise.all(workers.map((w) => ask(w, { cmd: "reopen" })));
      expect(replies).toEqual([{ reopened: true }, { reopened: true }]);
      await Promise.all(workers.map((w, n) => ask(w, { cmd: "write", tag: `new${n}`, count: 2 })));
      await Promise.all(workers.map((w) => ask(w, { cmd: "close" })));
    } finally {
      stop();
    }
    const tags = (p: string) => lines(p).map((l) => / -> ERROR: (\w+) /.exec(l)![1]).sort();
    expect(tags(`${path}.1`)).toEqual(["old0", "old0", "old1", "old1"]);
    expect(tags(path)).toEqual(["new0", "new0", "new1", "new1"]);
  });
});

// Runs a logger in a child process so its stdout and stderr can be read apart.
function runChild(body: string, env: Record<string, string> = {}) {
  const script = `import { createLogger } from ${JSON.stringify(loggerModule)};\n${body}`;
  const r = Bun.spawnSync(["bun", "-e", script], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("console sink", () => {
  const everyLevel = `
    log.found("/srv/eicar.com", "Sig.A");
    log.error("clamd did not answer");
    log.warn("queue is filling up");
    log.info("watching 3 paths");
    log.verbose("scan took 3 ms");
    log.found("/srv/eicar.com", "Sig.A");
    log.found("/srv/eicar.com", "Sig.A");
    log.found("/srv/eicar.com", "Sig.A");
    log.found("/srv/eicar.com", "Sig.A");
    log.found("/srv/eicar.com", "Sig.A");
    log.found("/srv/eicar.com", "Sig.A");`;

  test("--foreground prints FOUND and info lines on stdout and problems on stderr, verbose lines only with --verbose", () => {
    const quiet = runChild(`const log = createLogger({ foreground: true, verbose: false });${everyLevel}`);
    expect(quiet.code).toBe(0);
    // Seven identical FOUND lines stay seven: consola's repeat folding is off.
    expect(quiet.stdout).toBe(`/srv/eicar.com: Sig.A FOUND\nwatching 3 paths\n${"/srv/eicar.com: Sig.A FOUND\n".repeat(6)}`);
    expect(quiet.stderr).toBe("ERROR: clamd did not answer\nWARNING: queue is filling up\n");

    const verbose = runChild(`const log = createLogger({ foreground: true, verbose: true });${everyLevel}`);
    expect(verbose.stdout).toContain("watching 3 paths\nscan took 3 ms\n");
  });

  test("without --foreground nothing reaches the console", () => {
    const r = runChild(`const log = createLogger({ foreground: false, verbose: true });${everyLevel}`);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("");
  });

  test("a failing log file write is counted, reported on stderr once, and never thrown", () => {
    // /dev/full opens fine and fails every write with ENOSPC: a disk that filled up after start-up.
    const r = runChild(`
      const log = createLogger({ logFile: "/dev/full", foreground: false, verbose: false });
      log.error("one"); log.error("two"); log.found("/x", "Sig"); log.info("filtered out, not a failure");
      process.stdout.write(String(log.writeFailures));`);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("3");
    expect(r.stderr).toBe(
      'onacc: cannot write to log file "/dev/full": ENOSPC (no space left on device); further failures are counted, not reported\n',
    );
  });
});
