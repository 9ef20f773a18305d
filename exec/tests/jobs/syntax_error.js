// A syntax error on line 3, column 13.
const ok = 1;
const bad = (1 + ;
