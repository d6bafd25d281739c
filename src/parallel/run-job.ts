// Runs one job in the current realm: a worker, or the calling thread when the
// pool is inline. Both paths go through here, so their results are identical.

import { MigstreamError } from "../errors.js";
import { decodeBatchJob, decodeJob, encodeBatchJob, encodeJob } from "./codec-job.js";
import { applyFault, type JobContext } from "./job-faults.js";
import type { WireJob, WireResult } from "./jobs.js";

export async function runJob(job: WireJob, ctx: JobContext): Promise<WireResult> {
  try {
    await applyFault(job.test, ctx);
    switch (job.op) {
      case "encode":
        return await encodeJob(job.raw, job.coding, job.auto);
      case "decode":
        return await decodeJob(job.codec, job.payload, job.rawLength, job.hash);
      case "encodeBatch":
        return await encodeBatchJob(job.buffer, job.spans, job.coding, job.auto);
      case "decodeBatch":
        return await decodeBatchJob(job.buffer, job.spans);
      case "__echo":
        if (!ctx.faults) throw new MigstreamError("USAGE", "__echo is a test-only job", { field: "op" });
        return job.data;
      default:
        throw new MigstreamError("USAGE", `unknown job op ${String((job as { op: unknown }).op)}`, { field: "op" });
    }
  } finally {
    ctx.done++;
  }
}
