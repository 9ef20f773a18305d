// Throws from a nested function: the status carries the message and the stack.
function inner(x) {
  throw new Error("bad input: " + x);
}
function outer() {
  inner(42);
}
outer();
