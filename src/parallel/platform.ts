// Feature detection for threads, decided at run time so that one build serves
// Node (worker_threads), Deno and browsers (module Web Workers). Node modules
// are reached through process.getBuiltinModule (Node >= 20.16), never through a
// top-level import, so browsers can load this file.

/** Upper bound on pool threads (a sanity limit, far above real core counts). */
export const MAX_THREADS = 256;

export type Platform = "node" | "web" | "none";

type NodeProcess = {
  versions?: { node?: string };
  // biome-ignore lint/suspicious/noExplicitAny: each caller destructures the module it asked for by name.
  getBuiltinModule?: (id: string) => any;
  env?: Record<string, string | undefined>;
};

function nodeProcess(): NodeProcess | undefined {
  if ("Deno" in globalThis) return undefined; // Deno has a `process` too; it gets Web Workers.
  const p = (globalThis as { process?: NodeProcess }).process;
  return typeof p?.versions?.node === "string" && typeof p.getBuiltinModule === "function" ? p : undefined;
}

/** How this runtime makes threads. */
export function platform(): Platform {
  if (nodeProcess()) return "node";
  return typeof (globalThis as { Worker?: unknown }).Worker === "function" ? "web" : "none";
}

/** Available cores: navigator.hardwareConcurrency, else os.availableParallelism, else 1. */
export function availableCores(): number {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav?.hardwareConcurrency && nav.hardwareConcurrency > 0) return nav.hardwareConcurrency;
  const os = nodeProcess()?.getBuiltinModule?.("node:os");
  const n = os?.availableParallelism?.() ?? os?.cpus?.().length;
  return typeof n === "number" && n > 0 ? n : 1;
}

/** Reads an environment flag ("1"/"true") where the runtime allows it, without prompting. */
export function envFlag(name: string): boolean {
  let v: string | undefined;
  const deno = (
    globalThis as {
      Deno?: { env: { get(k: string): string | undefined }; permissions: { querySync?(d: object): { state: string } } };
    }
  ).Deno;
  if (deno) {
    try {
      if (deno.permissions.querySync?.({ name: "env", variable: name }).state === "granted") v = deno.env.get(name);
    } catch {
      v = undefined;
    }
  } else {
    v = nodeProcess()?.env?.[name];
  }
  return v === "1" || v === "true";
}

/** What a pool needs from a worker, whatever the runtime. */
export interface WorkerHandle {
  post(message: unknown, transfer: Transferable[]): void;
  terminate(): Promise<void>;
  /** Node only: whether the worker keeps the process alive. No-op elsewhere. */
  setRef(ref: boolean): void;
}

export interface WorkerEvents {
  message(data: unknown): void;
  /** The worker failed (uncaught error, load failure, undeliverable message). */
  error(cause: unknown): void;
  /** The worker ended (Node reports this; Web Workers that close are silent). */
  exit(code: number): void;
}

/** Starts the worker module at `url`. */
export function spawnWorker(url: URL, name: string, on: WorkerEvents): WorkerHandle {
  const p = nodeProcess();
  if (p) {
    const { Worker } = p.getBuiltinModule!("node:worker_threads");
    const w = new Worker(url, { name });
    w.on("message", on.message);
    w.on("error", on.error);
    w.on("messageerror", on.error);
    w.on("exit", on.exit);
    return {
      post: (m, t) => w.postMessage(m, t),
      terminate: async () => {
        await w.terminate();
      },
      setRef: (ref) => (ref ? w.ref() : w.unref()),
    };
  }
  const w = new Worker(url, { type: "module", name });
  w.onmessage = (e) => on.message(e.data);
  w.onerror = (e) => {
    e.preventDefault(); // Deno would otherwise end the whole process.
    on.error(new Error(e.message || "worker error"));
  };
  w.onmessageerror = () => on.error(new Error("worker message could not be deserialized"));
  return {
    post: (m, t) => w.postMessage(m, t),
    terminate: async () => w.terminate(),
    setRef: () => {},
  };
}

/** The worker side: the channel to the thread that started this worker. */
export interface HostPort {
  post(message: unknown, transfer: Transferable[]): void;
  onMessage(fn: (data: unknown) => void): void;
  /** Ends this worker ("exit" fault). */
  exit(code: number): void;
}

export function hostPort(): HostPort {
  const p = nodeProcess();
  if (p) {
    const { parentPort } = p.getBuiltinModule!("node:worker_threads");
    if (!parentPort) throw new Error("not inside a worker");
    return {
      post: (m, t) => parentPort.postMessage(m, t),
      onMessage: (fn) => parentPort.on("message", fn),
      exit: (code) => (p as { exit(c: number): void }).exit(code),
    };
  }
  const scope = globalThis as unknown as {
    postMessage(m: unknown, t: Transferable[]): void;
    addEventListener(t: "message", fn: (e: MessageEvent) => void): void;
    close(): void;
    Deno?: { exit(c: number): void };
  };
  return {
    post: (m, t) => scope.postMessage(m, t),
    onMessage: (fn) => scope.addEventListener("message", (e) => fn(e.data)),
    exit: (code) => (scope.Deno ? scope.Deno.exit(code) : scope.close()),
  };
}
