// zero kernel — being written.
