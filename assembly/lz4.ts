// lz4 kernel — being written.
