// Content-defined chunking (FastCDC style) over a gear rolling hash.
//
// fp = (fp << 1) + GEAR[byte]: the top bits of fp depend on the last 64 bytes.
// A chunk ends after the byte where fp's top `bits` bits are all zero. Per chunk:
// the first minSize bytes are skipped (not hashed; fp restarts at 0), up to
// avgSize bytes the test uses the harder mask (bitsS = log2(avg) + level), after
// avgSize the easier one (bitsL = log2(avg) - level), and a chunk is cut by force
// at maxSize. The scan state (fp, bytes into the current chunk) lives in memory
// at `state`, so a stream can be fed in pieces with the same boundaries.

// GEAR[i] = i-th output of splitmix64 seeded with 0x6d6967737472656d ("migstrem").
const GEAR: usize = memory.data<u64>([
  0x335ab0b21bba391d, 0xc86d87fe87c5e791, 0x2d8e87bc9bda407a, 0x3e3c01f340e3987f,
  0x563cb423ae95dd83, 0x2a4c248363503c15, 0x7f9d4158897f3b42, 0x5522e0bb96628a60,
  0x1a56424ae442b8ac, 0xc236274dd1ffff1d, 0xf8525b47d304b9bc, 0xfcf747623d4f1372,
  0x80c52db766d370e1, 0xa62150a465f8ade9, 0xc48733d84141b5c7, 0x56e1a19abbacd58e,
  0xddd91fb667bb2aa8, 0xfdeb01b9173566ec, 0x55418488dcdf309e, 0x058e34ffb84c9471,
  0xdf85611b08cfbbf8, 0xa0f7035ce99b50e3, 0xff56751617083a1a, 0x8362779ea51b2417,
  0x1d7b4a6fa1fe075d, 0x4f856d58a7d08cb7, 0x8d05fbfbe30489c2, 0xdbe51150564cae34,
  0x71e18d2e0149540b, 0x58cabe796dca3563, 0x4856fef9caba4bb6, 0x426ade3803d6c2fe,
  0x8b88946bcabaefe9, 0x194594ae833d5ae3, 0x93668b30def54176, 0x92f10b9aff4476dd,
  0x21d03d3e849b77a3, 0x45facbc995a38b25, 0xc358ff6b5517040b, 0x0d8f6c7bb6c54026,
  0x68f43378952523a0, 0x6b3ab07b9b46a852, 0xb8c4955103158b59, 0xcfdfba42e1058f69,
  0xa8c310dd9e35e2bc, 0x6d8e4ce472ece10f, 0x37e8c46a964217b8, 0xe6ccf4054bbee3ae,
  0xbc4ad3ebad9786c8, 0x548e3a8b73b5e980, 0x95ec4808f8942542, 0x360654fb66f6b2d2,
  0xf692238fb0d66da6, 0x6cf243438ef3da1c, 0x64f18e93b3577d3d, 0x818d8d2061396f94,
  0x45c60aab77978846, 0x922d881ab320f7cb, 0x63cbc57a65424ba3, 0x8467782ad9978447,
  0x94ba5647e84884db, 0x396c3cbd9432a703, 0x0cb97177826795dd, 0x0ff6b97e70a6f1d1,
  0xcbf5b00707705714, 0x590b1bdfbd8ef9df, 0x0ca8f7212884aaf9, 0x2edc4835b05e4b9c,
  0xe43660dd390d1dd0, 0xbb6dfa47a2140eea, 0x23d2e5d2396f1065, 0xfb107ec43b8d93de,
  0xdb482649a81a20b9, 0xece81811c791b4d2, 0x6124b526524554e0, 0x5eb751e3f5c86a90,
  0xf422f9a683f67df3, 0x414784dfb9ee0bd1, 0x9ab6d0ea27fa8f77, 0x7535b9dc5948a204,
  0x9dd4932d4703bcec, 0x641c6f9cb42c0579, 0x6b9991925ce306a0, 0xee7dc36da5eeec99,
  0x337da6a20d57dcf6, 0x22e39c09e093ef4a, 0x954aa9bac27f80a6, 0xaf092faa7744e4b1,
  0xfbd802160b5e444d, 0xd162cf2f470ebb41, 0x61374f40e6615b11, 0x158f8bde6cef92c8,
  0xb5165b6bef9c45f5, 0x5358a9fce16f631f, 0xa0937515667ece32, 0xf8e1cac330fa9e5d,
  0x31003b14d910bebf, 0x2e0cdca228bcd165, 0x116b3001d920cb19, 0x26b56deaf2a99bb7,
  0x3a4c34a2bb599bb7, 0x32229a992e03b08e, 0x30b9f120e40c6089, 0x0287a5ff38e2926f,
  0x2bc5930ce3e71c6c, 0x87105506728240da, 0x2ce8dff6ff5378f3, 0x6e7c18034d64feba,
  0x3e1fc7e03d1892d9, 0x3f809f5f61b6e2fc, 0x009a40a12aa14c49, 0x6f2a251cf6b3c01b,
  0x069d1c9e15e77e94, 0x347c0119e0e167d4, 0x983c04f18242eb27, 0x0021eef07a4e9fcc,
  0x1a52dbe26e106b6b, 0x3d79da304197a7b5, 0x7afbfa388334ed41, 0xb9807cb47efeee2e,
  0x31d7a81b7da850f2, 0xf94b4f998d975f3b, 0xc76ad073fd53d322, 0x70c3c6e4c9e06c94,
  0x17cbb5c7a7cec7c7, 0x31887231d0d69645, 0xe4f0d250d8e568b7, 0xc8ddd3fcb2eb9145,
  0x21af2120400045fd, 0x1ba7c7c0199c1eb0, 0x7aefa4995747854f, 0x6367e4e4ca3fb027,
  0x8b61a29119272696, 0xaf3acc8cc26c8e5f, 0x625b4d94fb4e930a, 0x10ea3f5371e8be1f,
  0x7ddf331146935bdd, 0xc5480811249d70b1, 0x1dc1e96679e1b4b3, 0xdf81f035298b2c45,
  0x402e03ce0425d0f7, 0x16136f704204a580, 0x4835d2f66cb4e226, 0x0c4a552cf2fc796c,
  0x7203af5abf588cda, 0x4641be526a322711, 0x97a575a88d22669a, 0x930339c88f99cbfe,
  0xdd596157bf059374, 0x71c3a0bf02aad99c, 0xaed9ffac8859d8ce, 0x91b9092726696c0b,
  0xc987037ed986d00f, 0x6b195b29604822be, 0x0d646429a3b1bf47, 0x5eb32a34954a3082,
  0x73c98830966233b2, 0x9c2745373dcac3f0, 0x294807fa39e84719, 0x6e230d16c55c9065,
  0xd528f5ec0d75d34b, 0x36386eafbdb9a6f3, 0xac5aafcc9f2aad64, 0x7abcd06fc0e12012,
  0xdd9675b7e140d69b, 0x9b8c2f393506ae79, 0xfb07770a52422d22, 0x7598d0c8e1875f0d,
  0xebd53f265e9fb169, 0x7dcde2da02f01798, 0x525abeb94e9a7649, 0xf5929aff6cef48e4,
  0xea1d0396ca4c6777, 0x27b66a48693c9c83, 0xdb80ed3d4288e4a5, 0x06198de6dcb9b06b,
  0x4105f166b3860b97, 0xf8dbe14351a52304, 0xdfd648ab9e13b274, 0xd70f35922ef04575,
  0x5017c977023afcfd, 0xa87c0ad87f8c4905, 0x5e8836de844a0614, 0x9687958ac790f2ae,
  0x4ce6d2173d796466, 0xa40ebb2866023319, 0x998b6ba9cec389d3, 0x5b09282855481749,
  0x348abb6f29753e00, 0x9cad114403046929, 0x923bc78a210e49ca, 0xe249ba45408a2170,
  0xca798c3ebdd5f579, 0xd1d4ce38db8e95d5, 0xb2d86a485bdf9ef3, 0x52295c27b0229000,
  0x73c123aafe569022, 0x7b6d197d2b8f8cfa, 0xe5537ef433f42129, 0x6fa0d7d151677687,
  0xcfd8fed235454f5c, 0x92b5a83d8b39b321, 0x6179dd808c4faba6, 0xf9827bcc27ecf8d0,
  0xfbc94887fad5abb4, 0x5cc7cbbdbc7cec06, 0xfd46820c4e2e8209, 0x74ccf91c5c9cea44,
  0xa7413df3e4713858, 0x6ab7e100f3a1892d, 0x115483d52e5b5f4e, 0xea846e18674d8b98,
  0xbe488d1614e0f522, 0x145671a1372393c4, 0x5bee8d1e6d8c8196, 0x49dd7a4bcb432a65,
  0x93df7fc3006c2fe6, 0xbae3be6fc82a6fde, 0xa53e9e0f67387e1f, 0x42c1526064938654,
  0x5e79116758db6e31, 0x7547fe5bf2c45970, 0xa7de7e589c3ef1a0, 0x2cb19b0c5b192ace,
  0x20f496e62f63337a, 0xf888ea8775f3b139, 0xa7eab2af70e2c949, 0x93db36ad588277be,
  0xd64c7f3a95fe928d, 0x5672d745da3a37fb, 0x88659154e2d8ac73, 0x17b1b510942a16bb,
  0xd4a4124f8d37cf71, 0x1e44cb6179db32fb, 0x3abb8b6745422969, 0xcd885d7de04e8a6b,
  0x416dd33428731e68, 0x868aa9afbad6bc58, 0x2c3334caa3b5a73b, 0xbc16bc5044c2b2fc,
  0xd1d9cf3a0502efab, 0x74f222c7149b16dd, 0x651f729cfefcae7f, 0x08631ca16657a14a,
  0xe99e558b9f6611ee, 0xd1c2bd5c90915f2c, 0x29c1b94d31828884, 0x26114f6c5a183b37,
  0x9860574b45ca488c, 0xa8a5f7a1b47d8cb0, 0x4a273f9c63d49161, 0xc7a5dd97ea4cfb09,
  0xacd98abd93b28eee, 0x0b7ba5dd8db0de20, 0xc2e7159b2a1bd7dc, 0x9f803525f5900552,
]);

// State layout: u64 fp at +0, u32 bytes of the current chunk at +8.
const STATE_FP: usize = 0;
const STATE_POS: usize = 8;

@inline function topMask(bits: u32): u64 {
  return bits == 0 ? 0 : ~(<u64>0) << (64 - bits);
}

/**
 * Scans `len` bytes at `ptr`, continuing the chunk described by `state`. Writes
 * the end offset (relative to `ptr`) of every chunk completed here as u32 at
 * `out` and returns their count (at most len / minSize + 1). Updates `state`.
 */
export function chunk_cdc(
  ptr: usize,
  len: usize,
  state: usize,
  out: usize,
  minSize: usize,
  avgSize: usize,
  maxSize: usize,
  bitsS: u32,
  bitsL: u32,
): u32 {
  const maskS = topMask(bitsS);
  const maskL = topMask(bitsL);
  let fp = load<u64>(state, STATE_FP);
  let pos = <usize>load<u32>(state, STATE_POS);
  let i: usize = 0;
  let n: u32 = 0;
  while (i < len) {
    let left = len - i;
    if (pos < minSize) {
      const skip = minSize - pos < left ? minSize - pos : left;
      i += skip;
      pos += skip;
      if (pos < minSize) break;
      left = len - i;
    }
    let cut = false;
    if (pos < avgSize) {
      const stop = i + (avgSize - pos < left ? avgSize - pos : left);
      const start = i;
      while (i < stop) {
        fp = (fp << 1) + load<u64>(GEAR + (<usize>load<u8>(ptr + i) << 3));
        i++;
        if ((fp & maskS) == 0) {
          cut = true;
          break;
        }
      }
      pos += i - start;
      left = len - i;
    }
    if (!cut && pos >= avgSize) {
      const stop = i + (maxSize - pos < left ? maxSize - pos : left);
      const start = i;
      while (i < stop) {
        fp = (fp << 1) + load<u64>(GEAR + (<usize>load<u8>(ptr + i) << 3));
        i++;
        if ((fp & maskL) == 0) {
          cut = true;
          break;
        }
      }
      pos += i - start;
      if (pos >= maxSize) cut = true;
    }
    if (!cut) break; // input exhausted inside a chunk
    store<u32>(out + (<usize>n << 2), <u32>i);
    n++;
    fp = 0;
    pos = 0;
  }
  store<u64>(state, fp, STATE_FP);
  store<u32>(state, <u32>pos, STATE_POS);
  return n;
}
