// Save and restore across two `migstream sim serve --variant libvfio-user`
// processes (servers that behave as the reference server: each serves one
// client and exits, printing its device's state and digest), all under Deno
// with only --allow-read --allow-write --allow-env --allow-net: the servers run
// dist/cli.js, this process drives the protocol from dist/protocol.js over the
// sockets, and the digests the servers print check the destination against
// the source.
import { connectVfioUser } from "../../dist/index.js";
import { type ResumeItem, resume, save } from "../../dist/protocol.js";

const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;
/** What the installed CLI needs under Deno, and nothing broader. */
const PERMISSIONS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net"];
/** Bound on a server becoming ready. */
const READY_MS = 15_000;

function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}

interface Server {
  path: string;
  initialDigest: string;
  proc: Deno.ChildProcess;
  /** Resolves once stdout is drained (the process ended). */
  drained: Promise<void>;
  /** All it printed so far. */
  output(): string;
}

async function serve(path: string, args: string[]): Promise<Server> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...PERMISSIONS, CLI, "sim", "serve", "--socket", path, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  let timer: number | undefined;
  const ready = new Promise<string>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`sim serve not ready within ${READY_MS} ms`)), READY_MS);
    (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
        const m = /listening on .* digest ([0-9a-f]{16})/.exec(out);
        if (m) resolve(m[1]);
      }
      reject(new Error(`sim serve ended before listening: ${out}`));
    })().catch(reject);
  });
  const drained = ready.then(
    async () => {
      for (let r = await reader.read(); !r.done; r = await reader.read()) out += r.value;
    },
    () => {},
  );
  try {
    const initialDigest = await ready;
    return { path, initialDigest, proc, drained, output: () => out };
  } catch (e) {
    proc.kill("SIGKILL");
    await proc.status;
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** The state and digest a reference-like server prints when its one client has left and it exits. */
async function exitReport(srv: Server): Promise<{ state: string; digest: string }> {
  const st = await srv.proc.status;
  await srv.drained;
  assert(st.code === 0, `server exit code ${st.code}`);
  const m = /the client left; exiting \(device (.+), digest ([0-9a-f]{16})\)/.exec(srv.output());
  assert(m, `no exit report in: ${srv.output()}`);
  return { state: m![1], digest: m![2] };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("save from one sim server process, restore into another, under Deno", async () => {
  const dir = await Deno.makeTempDir();
  const common = ["--state-size", "256KiB", "--transaction-size", "32KiB", "--variant", "libvfio-user"];
  const servers = await Promise.all([
    serve(`${dir}/src.sock`, [...common, "--seed", "5", "--dirty-rate", "2"]),
    serve(`${dir}/dst.sock`, [...common, "--empty"]),
  ]);
  const [src, dst] = servers;
  try {
    const items: ResumeItem[] = [];
    const s = await connectVfioUser(src.path, { timeoutMs: 10_000 });
    let transactions = 0;
    try {
      const summary = await save(
        s,
        {
          phase: (phase, iteration) => void items.push({ kind: "phase", phase, iteration }),
          transaction: (data) => void items.push({ kind: "transaction", data: data.slice() }),
        },
        { policy: { maxIterations: 2 } },
      );
      transactions = summary.transactions;
      assert(summary.precopy.transactions > 0, "pre-copy sent data");
    } finally {
      await s.close();
    }
    items.push({ kind: "verified" });
    const d = await connectVfioUser(dst.path, { timeoutMs: 10_000 });
    try {
      const r = await resume(d, items);
      assert(r.transactions === transactions && r.started, `resumed ${r.transactions} of ${transactions} transactions`);
    } finally {
      await d.close();
    }
    const [a, b] = await Promise.all([exitReport(src), exitReport(dst)]);
    assert(a.digest === b.digest, `destination digest ${b.digest} differs from source ${a.digest}`);
    assert(a.state === "RUNNING" && b.state === "RUNNING", `final states ${a.state}, ${b.state}`);
    assert(a.digest !== src.initialDigest, "pre-copy dirtying changed the source");
    assert(b.digest !== dst.initialDigest, "the destination changed");
    for (const srv of servers) assert(!(await exists(srv.path)), `${srv.path} removed when the server exited`);
  } finally {
    for (const srv of servers) {
      try {
        srv.proc.kill("SIGKILL");
      } catch {
        // already exited
      }
      await srv.proc.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
});
