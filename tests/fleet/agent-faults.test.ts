// Several clamds behind one agent, with real fanotify: one killed mid-run and restarted, all of them down,
// one that accepts and never answers, one behind TLS; and the live status a person reads meanwhile.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, disposeAgent, openInChild, startAgent, untilOpens, type RunningAgent } from "../fixtures/agent.ts";
import { disposeClamd, freeTcpPort, startClamd, type TestClamd } from "../fixtures/clamd.ts";
import { writeTestFiles } from "../fixtures/files.ts";
import { startRelay } from "../fixtures/proxy.ts";
import { EICAR } from "../fixtures/signatures.ts";
import { mountTmpfs, type TestMount } from "../fixtures/tmpfs.ts";
import { makePki, startTerminator } from "./tls-fixture.ts";

let clamds: TestClamd[] = [];
let mount: TestMount;
let agent: RunningAgent | undefined;

beforeAll(async () => {
  clamds = await Promise.all([startClamd(), startClamd(), startClamd()]);
  mount = mountTmpfs();
});
afterAll(async () => {
  await disposeAgent(agent);
  mount?.unmount();
  for (const c of clamds) await disposeClamd(c);
});

const unixUrl = (c: TestClamd) => `--clamd=unix://${c.socket}`;
// No verdict caching here: every open must reach a clamd for these tests to mean anything.
const NO_CACHE = ["--kernel-cache=no", "--cache-size=0"];
let n = 0;

interface Open {
  f: number;
  ok: boolean;
  err: string;
  ms: number;
  t: number;
}

async function statusJson(a: RunningAgent): Promise<any> {
  const r = Bun.spawnSync([BINARY, "status", "--json", `--status-socket=${a.statusSocket}`], { stdout: "pipe", stderr: "pipe", timeout: 10000 });
  if (r.exitCode !== 0) throw new Error(`onacc status failed: ${r.stderr}`);
  return JSON.parse(r.stdout.toString());
}

describe("several clamds", () => {
  test("one clamd killed mid-run and restarted: no open misses its deadline, every infected open is denied, it rejoins", async () => {
    const dir = join(mount.path, `fleet-${n++}`);
    const files: string[] = [];
    mkdirSync(dir);
    for (let i = 0; i < 300; i++) {
      const p = join(dir, `f${i}`);
      writeFileSync(p, i % 20 === 0 ? EICAR : `clean ${i}\n`);
      files.push(p);
    }
    const list = join(dir, "..", `list-${n}.txt`);
    writeFileSync(list, files.join("\n"));
    agent = await startAgent({
      clamd: clamds[0]!,
      config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessCurlTimeout 2000"],
      args: ["--foreground", "--verbose", ...NO_CACHE, ...clamds.map(unixUrl), "--config-file=CONFIG", "--log=LOG"],
    });
    try {
      const victim = clamds[1]!;
      const opener = new URL("../fixtures/opener.ts", import.meta.url).pathname;
      const procs = [1, 2].map((seed) => Bun.spawn(["bun", opener, list, "1500", String(seed)], { stdout: "pipe" }));
      const texts = ["", ""];
      const outputs = procs.map(async (p, i) => {
        for await (const c of p.stdout) texts[i] += new TextDecoder().decode(c);
      });
      const progress = () => texts.reduce((k, t) => k + (t.match(/\n/g)?.length ?? 0), 0);
      while (progress() < 1000 && procs.some((p) => p.exitCode === null)) await Bun.sleep(5);
      await victim.stop();
      while (progress() < 2000 && procs.some((p) => p.exitCode === null)) await Bun.sleep(5);
      await victim.restart();
      const finished = await Promise.race([Promise.all(procs.map((p) => p.exited)), Bun.sleep(120_000).then(() => null)]);
      expect(finished).not.toBeNull();
      await Promise.all(outputs);
      const opens: Open[] = texts.flatMap((t) => t.trim().split("\n").map((l) => JSON.parse(l) as Open));
      expect(opens.length).toBe(3000);
      // Deadline with 3 endpoints: 2000 ms × 2 tries + 1 s. No open came near it.
      expect(Math.max(...opens.map((o) => o.ms))).toBeLessThan(5000);
      // Two clamds were always up: every infected open was denied, every clean one allowed.
      expect(opens.filter((o) => o.f % 20 === 0 && o.ok)).toEqual([]);
      expect(opens.filter((o) => o.f % 20 !== 0 && !o.ok)).toEqual([]);

      // The restarted clamd rejoins: the status shows it up, and scans reach it again.
      let up = false;
      for (let i = 0; i < 100 && !up; i++) {
        up = (await statusJson(agent)).endpoints.every((e: { up: boolean }) => e.up);
        if (!up) await Bun.sleep(100);
      }
      expect(up).toBe(true);
      const before = victim.log().length;
      for (let i = 0; i < 60; i++) openInChild(files[i + 1]!);
      expect(victim.log().length).toBeGreaterThan(before);
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  }, 180_000);

  test("all clamds down: the error policy answers at once; when one returns, verdicts resume", async () => {
    const [a, b] = [await startClamd(), await startClamd()];
    const dir = join(mount.path, `fleet-${n++}`);
    const t = writeTestFiles(dir);
    try {
      agent = await startAgent({
        clamd: a,
        config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessDenyOnError yes"],
        args: ["--foreground", "--verbose", ...NO_CACHE, unixUrl(a), unixUrl(b), "--config-file=CONFIG", "--log=LOG"],
      });
      await a.stop();
      await b.stop();
      const denied = openInChild(t.clean);
      expect(denied.error).toBe("EPERM");
      expect(denied.ms).toBeLessThan(2000);
      await b.restart();
      expect(await untilOpens(t.clean)).toBe(true);
      expect(openInChild(t.eicar).error).toBe("EPERM");
    } finally {
      await disposeAgent(agent);
      agent = undefined;
      await disposeClamd(a);
      await disposeClamd(b);
    }
  });

  test("a clamd that accepts and never answers: scans fail over to another within the deadline", async () => {
    const relay = await startRelay(clamds[0]!.port);
    const dir = join(mount.path, `fleet-${n++}`);
    const t = writeTestFiles(dir);
    try {
      agent = await startAgent({
        clamd: clamds[0]!,
        config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes", "OnAccessDenyOnError yes", "OnAccessCurlTimeout 500"],
        args: ["--foreground", "--verbose", "--stream", ...NO_CACHE, `--clamd=tcp://127.0.0.1:${relay.port}`, unixUrl(clamds[2]!), "--config-file=CONFIG", "--log=LOG"],
      });
      await relay.setMode("blackhole");
      for (let i = 0; i < 6; i++) {
        const infected = openInChild(t.eicar);
        expect(infected.error).toBe("EPERM");
        expect(infected.ms).toBeLessThan(2500); // 500 ms × 2 endpoints + 1 s
        const clean = openInChild(t.clean);
        expect(clean.ok).toBe(true); // a verdict, not the deny-on-error policy
        expect(clean.ms).toBeLessThan(2500);
      }
    } finally {
      await disposeAgent(agent);
      agent = undefined;
      await relay.stop();
    }
  });
});

describe("TLS and status", () => {
  test("a clamd behind a TLS terminator protects; a terminator the CA did not sign is refused with a clear message", async () => {
    const pki = makePki();
    const terminator = await startTerminator(pki, clamds[0]!.port);
    const dir = join(mount.path, `fleet-${n++}`);
    const t = writeTestFiles(dir);
    try {
      agent = await startAgent({
        clamd: clamds[0]!,
        config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"],
        args: ["--foreground", "--verbose", `--clamd=tls://localhost:${terminator.port}`, `--tls-ca=${pki.caCert}`, "--config-file=CONFIG", "--log=LOG"],
      });
      expect(openInChild(t.eicar).error).toBe("EPERM");
      expect(openInChild(t.clean).ok).toBe(true);
      expect(agent.output()).toMatch(/tls:\/\/localhost:\d+ \(stream\)/);
      await disposeAgent(agent);
      agent = undefined;

      const conf = join(pki.dir, "bad.conf");
      writeFileSync(conf, `OnAccessIncludePath ${dir}\nOnAccessPrevention yes\n`);
      const r = Bun.spawnSync(
        [BINARY, "--foreground", `--clamd=tls://localhost:${terminator.port}`, `--tls-ca=${pki.otherCaCert}`, `--config-file=${conf}`, "--status-socket=none"],
        { stdout: "pipe", stderr: "pipe", timeout: 20000 },
      );
      expect(r.exitCode).toBe(4);
      expect(r.stderr.toString()).toMatch(/tls:\/\/localhost:\d+.*certificate/i);
    } finally {
      await disposeAgent(agent);
      agent = undefined;
      await terminator.stop();
      pki.dispose();
    }
  });

  test("onacc status and the Prometheus endpoint show endpoints, counters and latency of a running agent", async () => {
    const dir = join(mount.path, `fleet-${n++}`);
    const t = writeTestFiles(dir);
    const port = await freeTcpPort();
    agent = await startAgent({
      clamd: clamds[0]!,
      config: [`OnAccessIncludePath ${dir}`, "OnAccessPrevention yes"],
      args: ["--foreground", ...clamds.slice(0, 2).map(unixUrl), `--metrics-listen=127.0.0.1:${port}`, "--config-file=CONFIG", "--log=LOG"],
    });
    try {
      expect(openInChild(t.eicar).error).toBe("EPERM");
      expect(openInChild(t.clean).ok).toBe(true);
      const s = await statusJson(agent);
      expect(s.pid).toBe(agent.pid);
      expect(s.endpoints.length).toBe(2);
      expect(s.events.denied).toBeGreaterThanOrEqual(1);
      expect(s.scans.infected).toBeGreaterThanOrEqual(1);
      expect(s.latency.count).toBeGreaterThanOrEqual(2);
      expect(s.latency.p99Ms).toBeGreaterThan(0);
      const table = Bun.spawnSync([BINARY, "status", `--status-socket=${agent.statusSocket}`], { stdout: "pipe" }).stdout.toString();
      expect(table).toMatch(/unix:/);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^onacc_\w+/m);
      expect(metrics).toMatch(/denied/);
    } finally {
      await disposeAgent(agent);
      agent = undefined;
    }
  });
});
