// The README's library example: save a simulated device into a stream, check
// the stream, restore it into a second device, compare their digests.
// Run after `npm run build`: node examples/library.mjs
import { restoreDevice, saveDevice, verifyStream } from "../dist/index.js";
import { InProcessRegion, SimDevice } from "../dist/sim.js";

const source = new SimDevice({ stateSize: 8 << 20, seed: 1 });
const target = new SimDevice({ stateSize: 8 << 20, empty: true });

// Save: the driver walks the source through pre-copy and stop-and-copy; every
// buffer goes straight into the encoder, the stream to the write function.
const parts = [];
const { summary, stream: trailer } = await saveDevice(new InProcessRegion(source), (bytes) => void parts.push(bytes), {
  encoder: { codec: "lz4" },
  info: { name: "sim0" },
});
const stream = Buffer.concat(parts);
console.log(`saved ${summary.transactions} buffers, ${trailer.rawBytes} bytes → ${stream.length} bytes`);

// Verify without decompressing, then restore while "receiving" the parts.
verifyStream(stream);
await restoreDevice(new InProcessRegion(target), parts);
const same = source.digest() === target.digest();
console.log(same ? "restored: digests match" : "restored: DIGESTS DIFFER");
process.exitCode = same ? 0 : 1;
