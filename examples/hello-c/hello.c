#include <stdio.h>

int main(void) {
	puts("Hello from a lean image, built by slimbuild!");
	return 0;
}
