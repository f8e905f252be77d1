import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createLogger, type LogSettings } from "../../src/log/logger.ts";
import { jsonFormatter } from "../../src/log/format.ts";

let dir: string;
let n = 0;
const fresh = () => join(dir, `case-${++n}`, "onacc.log");
const linesOf = (path: string) => (existsSync(path) ? readFileSync(path, "utf8").split("\n").slice(0, -1) : []);

beforeAll(() => {
  dir = mkdtempSync("/tmp/onacc-rotate-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup(path: string): string {
  mkdirSync(join(path, ".."), { recursive: true });
  return path;
}

/** Every line of FILE and FILE.1 … FILE.N, oldest file first. */
function allLines(path: string): string[] {
  const rotated = readdirSync(join(path, ".."))
    .filter((f) => /^onacc\.log\.\d+$/.test(f))
    .map((f) => Number(f.split(".").pop()))
    .sort((a, b) => b - a);
  return [...rotated.flatMap((i) => linesOf(`${path}.${i}`)), ...linesOf(path)];
}

describe("--log-format json", () => {
  test("a JSON log line carries time, level and message, and path and signature for FOUND", () => {
    const path = setup(fresh());
    const log = createLogger({ logFile: path, foreground: false, verbose: false, format: "json" });
    log.found(Buffer.from([0x2f, 0x73, 0x72, 0x76, 0x2f, 0x62, 0x61, 0x64, 0xff, 0x0a, 0x78]), "Onacc.Test.EICAR.UNOFFICIAL");
    log.error('clamd said "no"');
    log.close();
    const [found, error] = linesOf(path).map((l) => JSON.parse(l));
    expect(Object.keys(found)).toEqual(["time", "level", "message", "path", "signature"]);
    expect(found.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(found.level).toBe("found");
    // The path is shown as in the text log: the invalid byte and the newline escaped, never raw.
    expect(found.path).toBe("/srv/bad\\xff\\nx");
    expect(found.signature).toBe("Onacc.Test.EICAR.UNOFFICIAL");
    expect(found.message).toBe(`${found.path}: Onacc.Test.EICAR.UNOFFICIAL FOUND`);
    expect(error).toEqual({ time: error.time, level: "error", message: 'clamd said "no"' });
  });

  test("jsonFormatter() keeps one record on one line whatever the message holds", () => {
    const line = jsonFormatter({ time: new Date(0), level: "warn", message: "a\u2028b\\c" });
    expect(line.includes("\n")).toBe(false);
    expect(JSON.parse(line)).toEqual({ time: "1970-01-01T00:00:00.000Z", level: "warn", message: "a\u2028b\\c" });
  });

  test("with --log-format json and no --log file, the console prints JSON", () => {
    const logger = resolve(import.meta.dir, "../../src/log/logger.ts");
    const script = `import { createLogger } from ${JSON.stringify(logger)};
      const log = createLogger({ foreground: true, verbose: false, format: "json" });
      log.found("/srv/x", "Sig.A"); log.error("boom");`;
    const r = Bun.spawnSync(["bun", "-e", script], { stdout: "pipe", stderr: "pipe" });
    expect(JSON.parse(r.stdout.toString())).toMatchObject({ level: "found", path: "/srv/x", signature: "Sig.A" });
    expect(JSON.parse(r.stderr.toString())).toMatchObject({ level: "error", message: "boom" });
  });
});

describe("--log-max-size rotation", () => {
  test("the file is rotated before it would pass the limit, and N old files are kept, newest first", () => {
    const path = setup(fresh());
    const log = createLogger({ logFile: path, foreground: false, verbose: false, maxSize: 1024, keep: 3 });
    // Each line is 100 bytes with its newline and timestamp prefix padding: 10 lines per 1 KiB file.
    for (let i = 0; i < 60; i++) log.error(`line ${String(i).padStart(3, "0")} ${"y".repeat(50)}`);
    log.close();
    expect(existsSync(`${path}.1`) && existsSync(`${path}.2`) && existsSync(`${path}.3`)).toBe(true);
    expect(existsSync(`${path}.4`)).toBe(false);
    for (const f of [path, `${path}.1`, `${path}.2`, `${path}.3`]) expect(statSync(f).size).toBeLessThanOrEqual(1024);
    const kept = allLines(path).map((l) => Number(/line (\d+)/.exec(l)![1]));
    // The newest lines, in order, none twice; only the oldest were dropped with FILE.4.
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 60 - kept.length + i));
    expect(kept.length).toBeGreaterThan(25);
  });

  test("--log-keep 0 keeps no old file", () => {
    const path = setup(fresh());
    const log = createLogger({ logFile: path, foreground: false, verbose: false, maxSize: 1024, keep: 0 });
    for (let i = 0; i < 40; i++) log.error(`line ${i} ${"z".repeat(60)}`);
    log.close();
    expect(readdirSync(join(path, ".."))).toEqual(["onacc.log"]);
    expect(linesOf(path).at(-1)).toContain("line 39 ");
  });

  test("a logger whose file another logger rotated follows it on its next write", () => {
    const path = setup(fresh());
    const settings: LogSettings = { logFile: path, foreground: false, verbose: false, maxSize: 2048, keep: 5 };
    const a = createLogger(settings);
    const b = createLogger(settings);
    b.error("b-first");
    for (let i = 0; i < 30; i++) a.error(`a ${i} ${"w".repeat(80)}`);
    // b still holds the file that is now FILE.n; it notices the size and reopens FILE.
    b.error("b-second");
    a.close();
    b.close();
    expect(linesOf(path).some((l) => l.endsWith("b-second"))).toBe(true);
    const all = allLines(path);
    expect(all.filter((l) => l.endsWith("b-first"))).toHaveLength(1);
    expect(all.filter((l) => l.endsWith("b-second"))).toHaveLength(1);
    expect(all.filter((l) => / a \d+ /.test(l))).toHaveLength(30);
  });

  test("four Workers rotating one file at once lose and duplicate no line, and every line stays whole", async () => {
    const path = setup(fresh());
    const settings: LogSettings = { logFile: path, foreground: false, verbose: false, maxSize: 16 * 1024, keep: 1000 };
    const perWorker = 2000;
    const tags = ["w0", "w1", "w2", "w3"];
    const workers = tags.map(() => new Worker(new URL("./rotation-writer.worker.ts", import.meta.url).href));
    const results = await Promise.all(
      workers.map(
        (w, i) =>
          new Promise<{ failures: number }>((done) => {
            w.onmessage = (e) => done(e.data);
            w.postMessage({ settings, tag: tags[i], count: perWorker });
          }),
      ),
    );
    for (const w of workers) w.terminate();
    expect(results.map((r) => r.failures)).toEqual([0, 0, 0, 0]);

    const files = readdirSync(join(path, ".."));
    expect(files.length).toBeGreaterThan(10);
    const seen = new Map<string, number>();
    for (const line of allLines(path)) {
      const m = /-> ERROR: (w\d) (\d+) x* end$/.exec(line);
      expect(m).not.toBeNull();
      const key = `${m![1]} ${m![2]}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    expect(seen.size).toBe(tags.length * perWorker);
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
    // Each file stays near the limit: at most a line per other writer past it.
    for (const f of files) expect(statSync(join(path, "..", f)).size).toBeLessThanOrEqual(16 * 1024 + 4 * 300);
  }, 20000);

  test("a rotation that fails is reported once on stderr and the lines go on in the current file", () => {
    const logger = resolve(import.meta.dir, "../../src/log/logger.ts");
    const path = setup(fresh());
    // FILE.1 is a non-empty directory: renaming FILE onto it fails.
    mkdirSync(`${path}.1`);
    writeFileSync(join(`${path}.1`, "keep"), "");
    const script = `import { createLogger } from ${JSON.stringify(logger)};
      const log = createLogger({ logFile: ${JSON.stringify(path)}, foreground: false, verbose: false, maxSize: 1024, keep: 1 });
      for (let i = 0; i < 40; i++) log.error("line " + i + " " + "q".repeat(60));
      process.stdout.write(String(log.writeFailures));`;
    const r = Bun.spawnSync(["bun", "-e", script], { stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString()).toBe("0");
    expect(r.stderr.toString()).toMatch(new RegExp(`^onacc: cannot rotate log file "${path}": E\\w+ .*; writing on to the current file\\n$`));
    expect(linesOf(path)).toHaveLength(40);
  });
});
