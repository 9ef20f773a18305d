// A syntax error on line 3, column 18 (the ';').
const ok = 1;
const bad = (1 + ;
