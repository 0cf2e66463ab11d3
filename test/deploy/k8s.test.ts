import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { PRIORITIES } from '../../libs/messaging/src/subjects.js';
import { DEFAULT_MONITORING_ENDPOINT, KEDA_FILE, renderKeda } from '../../scripts/keda.js';

// deploy/k8s as `kubectl kustomize` renders it, checked offline against the Kubernetes and KEDA
// models (kubernetes-models, @kubernetes-models/keda): each object passes its model's validate()
// (types, required fields, formats), and, since those validators let unknown fields through, is
// also type-checked as an object literal of the model's interface, where TypeScript rejects a
// field the model does not have (a misspelt field would otherwise be dropped by the API server
// or fail only at apply time). Then what Redrive needs of the manifests: no replica count where
// an autoscaler owns it, a PodDisruptionBudget for every Deployment, the worker with Redis and
// Postgres, and KEDA triggers for every type and lane the worker serves.

const ROOT = join(import.meta.dirname, '..', '..');
const K8S_DIR = join(ROOT, 'deploy', 'k8s');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The parameters KEDA's nats-jetstream scaler reads (keda.sh/docs/scalers/nats-jetstream). */
const NATS_JETSTREAM_PARAMETERS = new Set([
  'natsServerMonitoringEndpoint',
  'account',
  'stream',
  'consumer',
  'lagThreshold',
  'activationLagThreshold',
  'useHttps',
]);

function render(): K8sObject[] {
  let out: string;
  try {
    out = execFileSync('kubectl', ['kustomize', K8S_DIR], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error('kubectl is not installed: apt-get install -y kubernetes-client (or any kubectl ≥ 1.14)');
    }
    throw new Error(`kubectl kustomize deploy/k8s failed: ${e.stderr ?? e.message}`);
  }
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** The model module and interface of an object: kubernetes-models, or the KEDA models for keda.sh. */
function modelOf(o: K8sObject): { module: string; iface: string } {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  if (group === 'keda.sh')
    return { module: `@kubernetes-models/keda/keda.sh/${version}/${o.kind}`, iface: `I${o.kind}` };
  return { module: `kubernetes-models/${group ? `${group}/` : ''}${version}/${o.kind}`, iface: `I${o.kind}` };
}

const label = (o: K8sObject) => `${o.kind}/${o.metadata?.name}`;

/** Runtime validation with each model's own validator. */
async function validateWithModels(objects: K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const o of objects) {
    const { module } = modelOf(o);
    let Model: new (data: unknown) => { validate(): void };
    try {
      Model = ((await import(module)) as Record<string, new (data: unknown) => { validate(): void }>)[o.kind]!;
    } catch {
      problems.push(`${label(o)}: no model for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (err) {
      problems.push(`${label(o)}: ${(err as Error).message}`);
    }
  }
  return problems;
}

/** Field names, checked by TypeScript against the models' interfaces (excess property checks). */
function typeCheckWithModels(objects: K8sObject[]): string[] {
  const file = join(ROOT, 'test', 'deploy', '__rendered_objects__.ts');
  const lines: string[] = [];
  objects.forEach((o, i) => {
    const { module, iface } = modelOf(o);
    lines.push(`import type { ${iface} as T${i} } from '${module}';`);
  });
  objects.forEach((o, i) => lines.push(`// ${label(o)}`, `export const o${i}: T${i} = ${JSON.stringify(o, null, 1)};`));
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file?.fileName !== file || d.start === undefined) return text;
    // Name the object the error is in: the nearest `// Kind/name` line above it.
    const before = source.slice(0, d.start);
    const object = before.slice(before.lastIndexOf('\n// ') + 4).split('\n')[0];
    return `${object}: ${text}`;
  });
}

/** KEDA trigger metadata is a free map in the model: check the nats-jetstream parameters by name. */
function checkTriggerMetadata(objects: K8sObject[]): string[] {
  return objects
    .filter((o) => o.kind === 'ScaledObject')
    .flatMap((o) =>
      ((o.spec?.triggers ?? []) as { type: string; metadata: Record<string, string> }[])
        .filter((t) => t.type === 'nats-jetstream')
        .flatMap((t) =>
          Object.keys(t.metadata)
            .filter((k) => !NATS_JETSTREAM_PARAMETERS.has(k))
            .map((k) => `${label(o)}: nats-jetstream has no parameter ${k}`),
        ),
    );
}

async function check(objects: K8sObject[]): Promise<string[]> {
  return [...(await validateWithModels(objects)), ...typeCheckWithModels(objects), ...checkTriggerMetadata(objects)];
}

let objects: K8sObject[];
beforeAll(() => {
  objects = render();
});

const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
const deploymentEnv = (name: string) =>
  (
    byKind('Deployment').find((d) => d.metadata.name === name)!.spec as {
      template: { spec: { containers: { env: { name: string; value?: string; valueFrom?: unknown }[] }[] } };
    }
  ).template.spec.containers[0]!.env;

describe('kubectl kustomize deploy/k8s', () => {
  it('renders every service with its autoscaler, its budget and the worker ScaledObject', () => {
    expect(byKind('Deployment').map((d) => d.metadata.name)).toEqual(
      expect.arrayContaining(['intake', 'sync-worker', 'retry-scheduler', 'dlq-manager']),
    );
    expect(byKind('ScaledObject').map((o) => o.metadata.name)).toEqual(['sync-worker']);
    expect(byKind('PodDisruptionBudget')).toHaveLength(byKind('Deployment').length);
  });

  it('validates against the Kubernetes and KEDA models, field names included', async () => {
    expect(await check(objects)).toEqual([]);
  }, 60_000);

  it('fails the check on a misspelt field, a wrong type and an unknown trigger parameter', async () => {
    const copy = structuredClone(objects);
    const deployment = copy.find((o) => o.kind === 'Deployment')!;
    const container = (deployment.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template
      .spec.containers[0]!;
    container.imagePullPolicey = container.imagePullPolicy;
    delete container.imagePullPolicy;
    const scaled = copy.find((o) => o.kind === 'ScaledObject')!;
    scaled.spec!.minReplicaCont = scaled.spec!.minReplicaCount;
    delete scaled.spec!.minReplicaCount;
    const trigger = (scaled.spec!.triggers as { metadata: Record<string, string> }[])[0]!;
    trigger.metadata.lagTreshold = trigger.metadata.lagThreshold!;
    const service = copy.find((o) => o.kind === 'Service')!;
    (service.spec as { ports: { port: unknown }[] }).ports[0]!.port = 'eighty';

    const problems = await check(copy);
    expect(problems.join('\n')).toMatch(
      new RegExp(`Deployment/${deployment.metadata.name}: .*imagePullPolicey.* does not exist in type 'IContainer'`),
    );
    expect(problems.join('\n')).toMatch(
      /ScaledObject\/sync-worker: .*minReplicaCont.* does not exist in type 'IScaledObjectSpec'/,
    );
    expect(problems).toContain('ScaledObject/sync-worker: nats-jetstream has no parameter lagTreshold');
    expect(problems).toContain(`Service/${service.metadata.name}: data/spec/ports/0/port must be integer`);
  }, 60_000);

  it('sets no replica count on a Deployment an autoscaler scales', () => {
    const scaled = [
      ...byKind('HorizontalPodAutoscaler').map((h) => (h.spec as { scaleTargetRef: { name: string } }).scaleTargetRef),
      ...byKind('ScaledObject').map((s) => (s.spec as { scaleTargetRef: { name: string } }).scaleTargetRef),
    ].map((r) => r.name);
    expect(scaled.sort()).toEqual(
      byKind('Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    );
    expect(
      byKind('Deployment')
        .filter((d) => d.spec && 'replicas' in d.spec)
        .map(label),
    ).toEqual([]);
  });

  it('gives every Deployment a PodDisruptionBudget that selects its pods', () => {
    for (const d of byKind('Deployment')) {
      const podLabels = (d.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata
        .labels;
      const budgets = byKind('PodDisruptionBudget').filter((p) =>
        Object.entries((p.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels).every(
          ([k, v]) => podLabels[k] === v,
        ),
      );
      expect(budgets.map(label), label(d)).toHaveLength(1);
    }
  });

  it('gives the worker REDIS_URL and DATABASE_URL from secrets', () => {
    const env = deploymentEnv('sync-worker');
    for (const name of ['REDIS_URL', 'DATABASE_URL']) {
      expect(
        env.find((e) => e.name === name),
        name,
      ).toMatchObject({ valueFrom: { secretKeyRef: { key: name } } });
    }
  });

  it('has a trigger for each lane of every type the worker serves, on the monitoring port of the headless service', () => {
    const types = deploymentEnv('sync-worker')
      .find((e) => e.name === 'WORKER_TYPES')!
      .value!.split(',')
      .map((t) => t.trim());
    const triggers = (byKind('ScaledObject')[0]!.spec as { triggers: { metadata: Record<string, string> }[] }).triggers;
    expect(triggers.map((t) => t.metadata.consumer).sort()).toEqual(
      types.flatMap((type) => PRIORITIES.map((p) => `worker-${p}-${type}`)).sort(),
    );
    for (const t of triggers) {
      expect(t.metadata).toMatchObject({
        natsServerMonitoringEndpoint: DEFAULT_MONITORING_ENDPOINT,
        stream: 'JOBS',
        account: 'REDRIVE',
      });
    }
  });
});

describe('scripts/keda.ts', () => {
  it(`wrote deploy/k8s/${KEDA_FILE} from the Deployments as they are (run it after changing WORKER_TYPES)`, async () => {
    expect(readFileSync(join(K8S_DIR, KEDA_FILE), 'utf8')).toBe(await renderKeda(K8S_DIR));
  });

  it('writes three triggers per type, under the prefix a Deployment sets', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'redrive-keda-'));
    const worker = readFileSync(join(K8S_DIR, 'sync-worker.yaml'), 'utf8')
      .replace(/name: WORKER_TYPES\n(\s+)value: hello/, 'name: WORKER_TYPES\n$1value: hello, portfolio-sync')
      .replace(/(\s+)- name: WORKER_TYPES/, '$1- name: REDRIVE_PREFIX$1  value: acme$1- name: WORKER_TYPES');
    writeFileSync(join(dir, 'sync-worker.yaml'), worker);
    const [scaled] = parseAllDocuments(await renderKeda(dir)).map((d) => d.toJS() as K8sObject);
    const triggers = (scaled!.spec as { triggers: { metadata: Record<string, string> }[] }).triggers;
    expect(triggers.map((t) => `${t.metadata.stream}/${t.metadata.consumer}`)).toEqual([
      'acme_JOBS/worker-high-hello',
      'acme_JOBS/worker-normal-hello',
      'acme_JOBS/worker-low-hello',
      'acme_JOBS/worker-high-portfolio-sync',
      'acme_JOBS/worker-normal-portfolio-sync',
      'acme_JOBS/worker-low-portfolio-sync',
    ]);
  });
});
