// Ordered pipeline: runs jobs concurrently, yields results in submission order.
//
// Backpressure: at most `maxInFlight` jobs are pulled from the source and not yet
// handed to the consumer; the source is not pulled further until the consumer
// takes a result. Failure: the first job that fails ends the pipeline with its
// error as soon as it is known (even while earlier jobs are still running), so a
// failed chunk can never go missing silently. Results of jobs still running
// after a failure or an early `break` are dropped.

import { MigstreamError } from "../errors.js";

export class OrderedPipeline<T, R> {
  readonly maxInFlight: number;

  constructor(
    private readonly run: (job: T) => Promise<R>,
    maxInFlight: number,
  ) {
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw new MigstreamError("USAGE", `maxInFlight must be a positive integer, got ${maxInFlight}`, {
        field: "maxInFlight",
      });
    }
    this.maxInFlight = maxInFlight;
  }

  async *map(source: AsyncIterable<T> | Iterable<T>): AsyncGenerator<R, void, undefined> {
    const it: AsyncIterator<T> | Iterator<T> =
      Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (source as Iterable<T>)[Symbol.iterator]();
    let fail!: (e: unknown) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    failed.catch(() => {}); // observed through the races below
    const window: Promise<R>[] = [];
    let exhausted = false;
    let pulling = false;
    try {
      for (;;) {
        while (!exhausted && window.length < this.maxInFlight) {
          pulling = true;
          const next = await Promise.race([it.next(), failed]);
          pulling = false;
          if (next.done) {
            exhausted = true;
            break;
          }
          const value = next.value;
          const job = (async () => this.run(value))();
          job.catch(fail);
          window.push(job);
        }
        const head = window.shift();
        if (head === undefined) return;
        yield await Promise.race([head, failed]);
      }
    } finally {
      // Close the source unless it ended; do not wait on a pull that may never end.
      if (!exhausted) {
        const closing = Promise.resolve(it.return?.()).catch(() => {});
        if (!pulling) await closing;
      }
    }
  }
}
