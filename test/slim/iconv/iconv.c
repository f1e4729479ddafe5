#include <iconv.h>
#include <stdio.h>
#include <string.h>
int main(void) {
	iconv_t cd = iconv_open("UTF-8", "ISO-8859-15");
	if (cd == (iconv_t)-1) { perror("iconv_open"); return 1; }
	char in[] = "caf\xe9 \xa4 na\xefve", out[64];
	char *ip = in, *op = out;
	size_t il = strlen(in), ol = sizeof out;
	if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) { perror("iconv"); return 1; }
	*op = 0;
	printf("%s\n", out);
	return 0;
}
