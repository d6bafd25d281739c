// What chunks are coded with: a codec name and its level, resolved (defaults
// filled in) and checked here once — every entry point that takes a codec and
// a level from a caller (the stream encoder's options, a worker pool's jobs)
// turns them into a Coding through this function, and the coder trusts it.

import { MigstreamError } from "../errors.js";
import { AUTO_ZSTD_LEVEL } from "./auto/decide.js";
import { CODECS, type CodecName } from "./ids.js";
import { checkLz4Acceleration, LZ4_DEFAULT_ACCELERATION } from "./lz4.js";
import { checkZstdLevel, ZSTD_DEFAULT_LEVEL } from "./zstd.js";

/** A codec and its level, checked. */
export interface Coding {
  readonly codec: CodecName;
  /** lz4: the acceleration (1..); zstd: the level (1..19); auto: the highest zstd level it may use; raw, zero: 0. */
  readonly level: number;
}

/**
 * The Coding for `codec` at `level` (absent: the codec's default level).
 * Throws USAGE, naming `field`, for an unknown codec, a level out of range,
 * or a level given to a codec that takes none.
 */
export function resolveCoding(codec: unknown, level?: unknown, field = "codec"): Coding {
  if (!CODECS.includes(codec as CodecName)) {
    throw new MigstreamError("USAGE", `unknown codec ${String(codec)} (one of ${CODECS.join(", ")})`, { field });
  }
  const name = codec as CodecName;
  if (level !== undefined && typeof level !== "number")
    throw new MigstreamError("USAGE", `level must be a number, got ${String(level)}`, { field: "level" });
  switch (name) {
    case "lz4": {
      const l = level ?? LZ4_DEFAULT_ACCELERATION;
      checkLz4Acceleration(l);
      return { codec: name, level: l };
    }
    case "zstd":
    case "auto": {
      const l = level ?? (name === "zstd" ? ZSTD_DEFAULT_LEVEL : AUTO_ZSTD_LEVEL);
      checkZstdLevel(l);
      return { codec: name, level: l };
    }
    default:
      if (level !== undefined) throw new MigstreamError("USAGE", `codec ${name} takes no level`, { field: "level" });
      return { codec: name, level: 0 };
  }
}
