use strict;
use warnings;
use List::Util qw(sum max);
use File::Spec;
use POSIX qw(floor);
my @n = (3, 1, 4, 1, 5, 9, 2, 6);
printf "sum=%d max=%d floor=%d\n", sum(@n), max(@n), floor(7 / 2);
print File::Spec->catfile("usr", "share", "corpus"), "\n";
