// Never ends: must stop with out_of_fuel.
let i = 0;
for (;;) { i++; }
