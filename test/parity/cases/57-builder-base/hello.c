#include <stdio.h>
int main(void) { puts("hello from parity"); return 0; }
