// The sidecar examples hold together: their configuration loads, their command lines parse with onacc's
// own parser, the shared volume sits at the same path in both containers, and the capabilities are the
// ones docs/container.md names.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseRunArgs } from "../../src/cli/args.ts";
import { loadConfig } from "../../src/config/load.ts";
import { parseConfigText } from "../../src/config/parse.ts";
import { ROOT } from "./helpers.ts";

const CONTAINER_CONF = join(ROOT, "examples/container/onacc.conf");

interface Mount {
  name?: string;
  mountPath?: string;
}
interface K8sContainer {
  name: string;
  args?: string[];
  restartPolicy?: string;
  volumeMounts?: Mount[];
  securityContext?: { runAsUser?: number; capabilities?: { drop?: string[]; add?: string[] } };
}

function yaml(path: string): unknown[] {
  const parsed = Bun.YAML.parse(readFileSync(join(ROOT, path), "utf8"));
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** The Dockerfile's ENTRYPOINT as an argv. */
function entrypoint(): string[] {
  const line = readFileSync(join(ROOT, "examples/container/Dockerfile"), "utf8")
    .split("\n")
    .find((l) => l.startsWith("ENTRYPOINT "));
  return JSON.parse(line!.slice("ENTRYPOINT ".length)) as string[];
}

describe("container examples", () => {
  const { config } = loadConfig(CONTAINER_CONF);

  test("the sidecar configuration loads and guards /data/uploads through clamd over TCP", () => {
    expect(config.endpoints).toEqual([{ kind: "tcp", host: "clamd", port: 3310 }]);
    expect(config.onAccess.includePaths).toEqual(["/data/uploads"]);
    expect(config.onAccess.mountPaths).toEqual([]); // a filesystem mark would cover the whole node disk behind the volume
    expect(config.onAccess.prevention).toBe(true);
  });

  test("the image's command line parses with onacc's parser: foreground, streaming, the mounted config", () => {
    const [binary, ...args] = entrypoint();
    expect(binary).toBe("/usr/local/bin/onacc");
    const opts = parseRunArgs(args);
    expect(opts).toMatchObject({ foreground: true, scanMode: "stream", configFile: "/etc/onacc/onacc.conf" });
    expect(opts.ping?.attempts).toBeGreaterThan(30);
  });

  test("compose: onacc mounts the volume where the app does, shares its PID namespace, and adds only fanotify's capabilities", () => {
    const [compose] = yaml("examples/compose/compose.yaml") as Array<{ services: Record<string, Record<string, unknown>> }>;
    const { app, onacc } = compose!.services;
    const uploads = (service: Record<string, unknown>) => (service.volumes as string[]).find((v) => v.startsWith("uploads:"));
    expect(uploads(onacc!)).toBe(uploads(app!));
    expect(uploads(onacc!)).toBe(`uploads:${config.onAccess.includePaths[0]}`);
    expect(onacc!.pid).toBe("service:app");
    expect(onacc!.cap_drop).toEqual(["ALL"]);
    expect(onacc!.cap_add).toEqual(["SYS_ADMIN", "DAC_READ_SEARCH", "LEASE"]);
    expect(onacc!.volumes).toContain("../container/onacc.conf:/etc/onacc/onacc.conf:ro");
  });

  test("kubernetes: a native sidecar with the same mount path, a shared PID namespace, and the ConfigMap's configuration", () => {
    const docs = yaml("examples/kubernetes/app-with-onacc.yaml") as Array<{ kind: string; data?: Record<string, string>; spec?: any }>;
    const configMap = docs.find((d) => d.kind === "ConfigMap")!;
    // The ConfigMap says what examples/container/onacc.conf says.
    const fromMap = parseConfigText(configMap.data!["onacc.conf"]!, "configmap").config;
    expect({ ...fromMap, file: "" }).toEqual({ ...config, file: "" });

    const pod = docs.find((d) => d.kind === "Deployment")!.spec.template.spec;
    expect(pod.shareProcessNamespace).toBe(true);
    expect(pod.hostUsers).toBeUndefined();
    const sidecar = (pod.initContainers as K8sContainer[]).find((c) => c.name === "onacc")!;
    const app = (pod.containers as K8sContainer[]).find((c) => c.name === "app")!;
    expect(sidecar.restartPolicy).toBe("Always");
    const mountOf = (c: K8sContainer, name: string) => c.volumeMounts!.find((m) => m.name === name)!.mountPath;
    expect(mountOf(sidecar, "uploads")).toBe(mountOf(app, "uploads"));
    expect(mountOf(sidecar, "uploads")).toBe(config.onAccess.includePaths[0]);

    const opts = parseRunArgs(sidecar.args!);
    expect(opts.scanMode).toBe("stream");
    expect(opts.configFile).toBe(`${mountOf(sidecar, "onacc-config")}/onacc.conf`);
    expect(sidecar.securityContext!.runAsUser).toBe(0);
    expect(sidecar.securityContext!.capabilities).toEqual({ drop: ["ALL"], add: ["SYS_ADMIN", "DAC_READ_SEARCH", "LEASE"] });

    const clamd = yaml("examples/kubernetes/clamd.yaml") as Array<{ kind: string; metadata: { name: string }; spec: any }>;
    const service = clamd.find((d) => d.kind === "Service")!;
    expect(service.metadata.name).toBe(config.endpoints[0]!.kind === "tcp" ? config.endpoints[0]!.host : "");
    expect(service.spec.ports[0].port).toBe(3310);
  });
});
