// Worker entry (built to dist/worker.js). Each worker is its own module realm,
// so it gets its own kernel instance and its own zstd instance. Jobs run one at
// a time in arrival order; results and errors go back with the job id.

import { init } from "../codec/index.js";
import { initSync } from "../kernels/wasm.js";
import { postable } from "./buffers.js";
import { FAULT_EXIT_CODE, type JobContext } from "./job-faults.js";
import { type Reply, type Request, toWireError, type WireResult } from "./jobs.js";
import { hostPort } from "./platform.js";
import { runJob } from "./run-job.js";

const port = hostPort();
const ctx: JobContext = {
  faults: false,
  done: 0,
  crash(mode) {
    if (mode === "exit") port.exit(FAULT_EXIT_CODE);
    else
      setTimeout(() => {
        throw new Error("injected uncaught error");
      });
    return new Promise<never>(() => {}); // the realm ends before this settles
  },
};

function send(reply: Reply, transfer: Transferable[] = []): void {
  port.post(reply, transfer);
}

/** Results live in buffers this worker owns (often the job's own input buffer): moved whole. */
function transferOf(result: WireResult): { result: WireResult; transfer: ArrayBuffer[] } {
  if (result instanceof Uint8Array) {
    const p = postable(result, true);
    return { result: p.view, transfer: p.transfer };
  }
  if ("buffer" in result) {
    const p = postable(result.buffer, true);
    return { result: { ...result, buffer: p.view }, transfer: p.transfer };
  }
  const p = postable(result.payload, true);
  return { result: { ...result, payload: p.view }, transfer: p.transfer };
}

async function handle(msg: Request): Promise<void> {
  if (msg.type === "init") {
    ctx.faults = msg.faults;
    initSync();
    if (msg.zstd) await init({ zstd: true });
    send({ type: "ready" });
    return;
  }
  try {
    const { result, transfer } = transferOf(await runJob(msg.job, ctx));
    send({ type: "done", id: msg.id, result }, transfer);
  } catch (e) {
    send({ type: "failed", id: msg.id, error: toWireError(e) });
  }
}

let chain: Promise<void> = Promise.resolve();
port.onMessage((data) => {
  chain = chain.then(() => handle(data as Request));
});
