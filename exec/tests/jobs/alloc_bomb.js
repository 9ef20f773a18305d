// Allocates without bound: must stop with memory_limit.
const keep = [];
for (;;) keep.push(new Array(100000).fill(keep.length));
