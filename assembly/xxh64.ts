// xxh64 kernel — being written.
