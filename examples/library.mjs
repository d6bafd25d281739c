// The README's library example: save a simulated device into a stream, check
// the stream, restore it into a second device, compare their digests.
// Run after `npm run build`: node examples/library.mjs
import { InProcessRegion, SimDevice, StreamEncoder, restoreDevice, saveDevice, verifyStream } from "../dist/index.js";

const source = new SimDevice({ stateSize: 8 << 20, seed: 1 });
const target = new SimDevice({ stateSize: 8 << 20, empty: true });

// Save: the driver walks the source through pre-copy and stop-and-copy,
// every buffer goes straight into the encoder.
const parts = [];
const encoder = new StreamEncoder((bytes) => void parts.push(bytes.slice()), { codec: "lz4" });
const { summary } = await saveDevice(new InProcessRegion(source), encoder, 0, { name: "sim0" });
const trailer = await encoder.finish();
const stream = Buffer.concat(parts);
console.log(`saved ${summary.transactions} buffers, ${trailer.rawBytes} bytes → ${stream.length} bytes`);

// Verify without decompressing, then restore while "receiving" the parts.
verifyStream(stream);
await restoreDevice(new InProcessRegion(target), parts);
const same = source.digest() === target.digest();
console.log(same ? "restored: digests match" : "restored: DIGESTS DIFFER");
process.exitCode = same ? 0 : 1;
