/**
 * The Kubernetes manifests of deploy/k8s/, checked as a cluster would and stricter: each
 * object against the API's OpenAPI schema (kubernetes-models, prometheus-operator's models),
 * unknown fields rejected by type-checking every object against the models' interfaces (the
 * schemas accept extra fields, so a misspelled `securityContex` would otherwise pass), the
 * hardening every kvh pod needs, how the pieces refer to each other, and every kvh container's
 * arguments parsed by kvh's own command tree.
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1";
import { CronJob, Job } from "kubernetes-models/batch/v1";
import { ResourceClaimTemplate } from "kubernetes-models/resource.k8s.io/v1";
import { PersistentVolumeClaim, Service } from "kubernetes-models/v1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { ROOT } from "../cli/_kvh.ts";
import { parseKvhArgs } from "./_kvh_args.ts";

// deno-lint-ignore no-explicit-any -- manifests are arbitrary YAML; each check walks the fields it needs.
type Manifest = Record<string, any>;

/** Each kind kvh ships: its model (schema validation) and where its TypeScript interface is. */
const MODELS: Record<
  string,
  { model: { new (data: never): { validate(): void } }; module: string; type: string }
> = {
  "batch/v1 CronJob": { model: CronJob, module: "kubernetes-models/batch/v1", type: "ICronJob" },
  "batch/v1 Job": { model: Job, module: "kubernetes-models/batch/v1", type: "IJob" },
  "apps/v1 Deployment": {
    model: Deployment,
    module: "kubernetes-models/apps/v1",
    type: "IDeployment",
  },
  "v1 Service": { model: Service, module: "kubernetes-models/v1", type: "IService" },
  "v1 PersistentVolumeClaim": {
    model: PersistentVolumeClaim,
    module: "kubernetes-models/v1",
    type: "IPersistentVolumeClaim",
  },
  "resource.k8s.io/v1 ResourceClaimTemplate": {
    model: ResourceClaimTemplate,
    module: "kubernetes-models/resource.k8s.io/v1",
    type: "IResourceClaimTemplate",
  },
  "monitoring.coreos.com/v1 ServiceMonitor": {
    model: ServiceMonitor,
    module: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
    type: "IServiceMonitor",
  },
};

const DIR = `${ROOT}deploy/k8s/`;
const VERSION: string = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).version;
const KVH_IMAGES = [`kvh:${VERSION}`, `kvh:${VERSION}-cuda`];

/** Every manifest, parsed as kubectl does (YAML 1.1: `0440` is octal), with its file. */
function loadManifests(): { file: string; manifest: Manifest }[] {
  const loaded: { file: string; manifest: Manifest }[] = [];
  for (const entry of [...Deno.readDirSync(DIR)].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.name.endsWith(".yaml")) continue;
    const text = Deno.readTextFileSync(`${DIR}${entry.name}`);
    for (const document of parseAllDocuments(text, { version: "1.1", uniqueKeys: true })) {
      assert.deepEqual(document.errors, [], `${entry.name}: ${document.errors.join("; ")}`);
      loaded.push({ file: entry.name, manifest: document.toJS() });
    }
  }
  return loaded;
}

const MANIFESTS = loadManifests();

function modelOf(manifest: Manifest) {
  const model = MODELS[`${manifest.apiVersion} ${manifest.kind}`];
  assert.ok(model, `no model for ${manifest.apiVersion} ${manifest.kind}`);
  return model;
}

function podSpecOf(manifest: Manifest): Manifest | undefined {
  if (manifest.kind === "CronJob") return manifest.spec.jobTemplate.spec.template.spec;
  if (manifest.kind === "Job" || manifest.kind === "Deployment") return manifest.spec.template.spec;
  return undefined;
}

function containersOf(pod: Manifest): Manifest[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

/** The pod specs of every manifest, each with its name for messages. */
const PODS = MANIFESTS.flatMap(({ file, manifest }) => {
  const pod = podSpecOf(manifest);
  return pod === undefined
    ? []
    : [{ where: `${file} ${manifest.kind}/${manifest.metadata.name}`, pod }];
});

Deno.test("deploy/k8s: every object validates against the Kubernetes schemas", () => {
  const kinds = new Set(MANIFESTS.map(({ manifest }) => manifest.kind));
  for (
    const kind of [
      "CronJob",
      "Job",
      "Deployment",
      "Service",
      "ServiceMonitor",
      "PersistentVolumeClaim",
    ]
  ) {
    assert.ok(kinds.has(kind), `no ${kind} in deploy/k8s`);
  }
  for (const { file, manifest } of MANIFESTS) {
    const { model } = modelOf(manifest);
    assert.doesNotThrow(() => new model(manifest as never).validate(), `${file}: ${manifest.kind}`);
  }
});

/** A TypeScript module declaring each object with its model's interface. */
function typedModule(
  objects: { type: string; module: string; value: Manifest; expectError?: boolean }[],
): string {
  const imports = new Map<string, Set<string>>();
  for (const { type, module } of objects) {
    imports.set(module, (imports.get(module) ?? new Set()).add(type));
  }
  const lines = [...imports].map(([module, types]) =>
    `import type { ${[...types].join(", ")} } from "${module}";`
  );
  objects.forEach(({ type, value, expectError }, i) => {
    if (expectError) lines.push("// @ts-expect-error: an unknown field must fail the check");
    // One line per object, so @ts-expect-error covers an error anywhere inside it.
    lines.push(`export const object${i}: ${type} = ${JSON.stringify(value)};`);
  });
  return lines.join("\n") + "\n";
}

Deno.test("deploy/k8s: no unknown field anywhere (a misspelled securityContex fails)", async () => {
  const objects: Parameters<typeof typedModule>[0] = MANIFESTS.map(({ manifest }) => ({
    ...modelOf(manifest),
    value: manifest,
  }));
  // The check must catch a typo deep inside a pod template.
  const deployment = structuredClone(
    MANIFESTS.find(({ manifest }) => manifest.kind === "Deployment")!.manifest,
  );
  const container = deployment.spec.template.spec.containers[0];
  container.securityContex = container.securityContext;
  delete container.securityContext;
  objects.push({ ...modelOf(deployment), value: deployment, expectError: true });

  const dir = await Deno.makeTempDir({ prefix: "kvh-k8s-" });
  try {
    await Deno.writeTextFile(`${dir}/manifests.ts`, typedModule(objects));
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", "--config", `${ROOT}deno.json`, `${dir}/manifests.ts`],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, text.replaceAll(`${dir}/`, "").slice(0, 4000));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy/k8s: every pod is non-root, read-only, unprivileged and bounded", () => {
  assert.ok(PODS.length >= 4);
  for (const { where, pod } of PODS) {
    assert.equal(pod.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
    assert.ok(pod.securityContext.runAsUser > 0, `${where}: runAsUser`);
    assert.equal(pod.automountServiceAccountToken, false, `${where}: kvh needs no API token`);
    for (const container of containersOf(pod)) {
      const at = `${where} container ${container.name}`;
      const context = container.securityContext ?? {};
      assert.equal(context.allowPrivilegeEscalation, false, `${at}: allowPrivilegeEscalation`);
      assert.notEqual(context.privileged, true, `${at}: privileged`);
      assert.deepEqual(context.capabilities?.drop, ["ALL"], `${at}: capabilities`);
      assert.notEqual(context.runAsUser, 0, `${at}: root`);
      // The engine is the user's image; every container kvh ships runs on a read-only root.
      if (container.name !== "engine") {
        assert.equal(context.readOnlyRootFilesystem, true, `${at}: readOnlyRootFilesystem`);
      }
      for (const resource of ["cpu", "memory"]) {
        assert.ok(container.resources?.limits?.[resource], `${at}: no ${resource} limit`);
        assert.ok(container.resources?.requests?.[resource], `${at}: no ${resource} request`);
      }
    }
  }
});

Deno.test("deploy/k8s: Secrets are referenced, never included, and documented", () => {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  for (const { file, manifest } of MANIFESTS) {
    assert.notEqual(manifest.kind, "Secret", `${file} includes a Secret`);
    assert.doesNotMatch(JSON.stringify(manifest), /PRIVATE\+KEY|BEGIN [A-Z ]*PRIVATE KEY/, file);
  }
  const referenced = new Set<string>();
  for (const { where, pod } of PODS) {
    for (const volume of pod.volumes ?? []) {
      if (volume.secret === undefined) continue;
      referenced.add(volume.secret.secretName);
      // Group-readable for fsGroup (the copy runs as that group), nothing for others.
      assert.equal(volume.secret.defaultMode, 0o440, `${where}: ${volume.name} defaultMode`);
    }
  }
  for (
    const { manifest } of MANIFESTS.filter(({ manifest }) => manifest.kind === "ServiceMonitor")
  ) {
    for (const endpoint of manifest.spec.endpoints) {
      referenced.add(
        endpoint.authorization.credentials.name,
      );
    }
  }
  assert.deepEqual([...referenced].sort(), [
    "kvh-checkpoint-signing",
    "kvh-forensic-hmac",
    "kvh-metrics-token",
  ]);
  for (const name of referenced) {
    assert.match(readme, new RegExp(`kubectl create secret generic ${name} `), `README: ${name}`);
  }
  const configMaps = PODS.flatMap(({ pod }) => pod.volumes ?? [])
    .flatMap((volume: Manifest) => volume.configMap?.name ?? []);
  for (const name of configMaps) {
    assert.match(readme, new RegExp(`kubectl create configmap ${name} `), `README: ${name}`);
  }
});

/** Where an absolute path of a container lives: the volume (claim and subPath) and the rest. */
function volumePath(pod: Manifest, container: Manifest, path: string): string {
  const mount = container.volumeMounts.find((m: Manifest) => path.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `${container.name}: ${path} is on no volume`);
  const volume = pod.volumes.find((v: Manifest) => v.name === mount.name);
  const source = volume.persistentVolumeClaim?.claimName ?? `${volume.name} (not a claim)`;
  return `${source}:${mount.subPath ?? ""}${path.slice(mount.mountPath.length)}`;
}

Deno.test("deploy/k8s: the checkpoint verify checks is the one the writers sign, off the log's volume", () => {
  const places = new Set<string>();
  for (const { pod } of PODS) {
    for (const container of containersOf(pod).filter((c) => c.image.startsWith("kvh:"))) {
      for (const arg of container.args as string[]) {
        const match = /^--(?:checkpoint-file|checkpoint)=(.+)$/.exec(arg);
        if (match) places.add(volumePath(pod, container, match[1]!));
      }
    }
  }
  // The sidecar and prune write it, verify reads it: one file on one claim.
  assert.equal(places.size, 1, [...places].join(", "));
  assert.doesNotMatch([...places][0]!, /^kvh-forensics:/, "the checkpoint shares the log's volume");
});

Deno.test("deploy/k8s: serve-metrics binds all interfaces with a token the ServiceMonitor sends", () => {
  const deployment = MANIFESTS.find(({ manifest }) =>
    manifest.kind === "Deployment" &&
    manifest.spec.template.spec.containers.some((c: Manifest) => c.args?.[0] === "serve-metrics")
  )!.manifest;
  const pod = deployment.spec.template.spec;
  const container = pod.containers.find((c: Manifest) => c.args?.[0] === "serve-metrics");
  const flag = (name: string) =>
    container.args.find((arg: string) => arg.startsWith(`${name}=`))?.slice(name.length + 1);
  assert.equal(flag("--host"), "0.0.0.0");
  assert.ok(flag("--token-file"), "an exporter on every interface needs --token-file");
  const port = container.ports.find((p: Manifest) => p.containerPort === Number(flag("--port")));
  assert.ok(port, "the container port is the --port kvh binds");

  const service = MANIFESTS.find(({ manifest }) => manifest.kind === "Service")!.manifest;
  for (const [key, value] of Object.entries(service.spec.selector)) {
    assert.equal(deployment.spec.template.metadata.labels[key], value, `Service selector ${key}`);
  }
  const servicePort = service.spec.ports.find((p: Manifest) => p.targetPort === port.name);
  assert.ok(servicePort, "the Service targets the metrics port");

  const monitor = MANIFESTS.find(({ manifest }) => manifest.kind === "ServiceMonitor")!.manifest;
  for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) {
    assert.equal(service.metadata.labels[key], value, `ServiceMonitor selector ${key}`);
  }
  const endpoint = monitor.spec.endpoints[0];
  assert.equal(endpoint.port, servicePort.name);
  assert.equal(endpoint.authorization.type, "Bearer");
  // The Secret the token file is copied from is the one the ServiceMonitor sends.
  const { name, key } = endpoint.authorization.credentials;
  const volume = pod.volumes.find((v: Manifest) => v.secret?.secretName === name);
  assert.ok(volume, `the exporter does not mount Secret ${name}`);
  const copy = pod.initContainers.find((c: Manifest) =>
    c.volumeMounts.some((m: Manifest) => m.name === volume.name)
  );
  const source = `${
    copy.volumeMounts.find((m: Manifest) => m.name === volume.name).mountPath
  }/${key}`;
  assert.ok(
    copy.command.join(" ").includes(`${source} ${flag("--token-file")}`),
    copy.command.join(" "),
  );
});

Deno.test("deploy/k8s: the sidecar shares the engine's socket volume, /dev/shm and GPU claim", () => {
  const pod =
    PODS.find(({ pod }) => pod.containers.some((c: Manifest) => c.args?.[0] === "trace"))!.pod;
  const engine = pod.containers.find((c: Manifest) => c.name === "engine");
  const kvh = pod.containers.find((c: Manifest) => c.args?.[0] === "trace");
  assert.ok(engine, "no engine container beside the sidecar");
  const listen = kvh.args.find((arg: string) => arg.startsWith("--listen="))?.slice(
    "--listen=".length,
  );
  assert.match(listen, /^unix:\//);
  const socketDir = dirname(dirname(listen.slice("unix:".length)));
  const mounts = (c: Manifest) =>
    new Map(c.volumeMounts.map((m: Manifest) => [m.mountPath, m.name]));
  for (const path of [socketDir, "/dev/shm"]) {
    assert.ok(mounts(kvh).has(path), `kvh does not mount ${path}`);
    assert.equal(mounts(engine).get(path), mounts(kvh).get(path), `${path} is not shared`);
  }
  const dshm = pod.volumes.find((v: Manifest) => v.name === mounts(kvh).get("/dev/shm"));
  assert.equal(dshm.emptyDir?.medium, "Memory");
  assert.ok(engine.args.some((arg: string) => arg.includes(listen.slice("unix:".length))));
  assert.deepEqual(kvh.resources.claims, engine.resources.claims, "the same GPU claim");
  assert.equal(pod.resourceClaims.length, 1);
  // The socket is 0600: the engine must run as kvh's uid.
  assert.equal(
    engine.securityContext.runAsUser ?? pod.securityContext.runAsUser,
    pod.securityContext.runAsUser,
  );
  assert.equal(
    kvh.securityContext.runAsUser ?? pod.securityContext.runAsUser,
    pod.securityContext.runAsUser,
  );
});

// Each kvh container: its image is what the Dockerfiles build, its arguments parse with kvh's
// own command tree, and every absolute path it names is on one of its volumes.
for (const { where, pod } of PODS) {
  for (const container of containersOf(pod).filter((c) => c.image.startsWith("kvh:"))) {
    const args: string[] = container.args;
    Deno.test({
      name: `deploy/k8s ${where} container ${container.name}: a real kvh command line`,
      async fn() {
        assert.ok(
          KVH_IMAGES.includes(container.image),
          `${container.image}: not ${KVH_IMAGES.join(" or ")}`,
        );
        assert.equal(container.command, undefined, "the image's entry point is kvh");
        await parseKvhArgs(args);
      },
    });
    Deno.test(`deploy/k8s ${where} container ${container.name}: every path is on a volume`, () => {
      const mounts: string[] = container.volumeMounts.map((m: Manifest) => m.mountPath);
      for (const arg of args) {
        const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : arg;
        const path = value.replace(/^unix:/, "");
        if (!path.startsWith("/")) continue;
        assert.ok(
          mounts.some((mount) => path === mount || path.startsWith(`${mount}/`)),
          `${arg} is on the container's read-only root`,
        );
      }
    });
  }
}

Deno.test("no placeholder registry left: manifests, README and compliance use kvh:<version>", () => {
  for (const path of ["README.md", "Dockerfile", "Dockerfile.cuda"]) {
    assert.doesNotMatch(Deno.readTextFileSync(`${ROOT}${path}`), /registry\.example\.com/, path);
  }
  for (const { file, manifest } of MANIFESTS) {
    assert.doesNotMatch(JSON.stringify(manifest), /registry\.example\.com/, file);
  }
  const images = new Set(
    PODS.flatMap(({ pod }) => containersOf(pod).map((c) => c.image))
      .filter((image: string) => image.startsWith("kvh")),
  );
  assert.deepEqual([...images].sort(), KVH_IMAGES);
});
