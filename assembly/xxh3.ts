// xxh3 kernel — being written.
