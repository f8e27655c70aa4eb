#include <stdio.h>
#include "count.h"

int main(int argc, char **argv)
{
    struct counts c = {0};
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            FILE *f = fopen(argv[i], "rb");
            if (!f) {
                perror(argv[i]);
                return 1;
            }
            count_stream(f, &c);
            fclose(f);
        }
    } else {
        count_stream(stdin, &c);
    }
    printf("%zu lines, %zu words, %zu bytes, %zu characters\n",
           c.lines, c.words, c.bytes, c.utf8_chars);
    return 0;
}
