#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
int main(void) {
	struct passwd *pw = getpwnam("app");
	struct group *gr = getgrgid(1000);
	if (!pw || !gr) { puts("user lookup failed"); return 1; }
	printf("user %s uid %d home %s group %s\n", pw->pw_name, (int)pw->pw_uid, pw->pw_dir, gr->gr_name);
	struct addrinfo hints, *res;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	/* A container's /etc/hosts is the runtime's own (as docker run's is): look up
	   a name it always has, through NSS's files module. */
	if (getaddrinfo("localhost", NULL, &hints, &res) != 0) { puts("host lookup failed"); return 1; }
	char buf[64];
	inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, buf, sizeof buf);
	printf("localhost is %s\n", buf);
	return 0;
}
