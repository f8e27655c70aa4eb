#ifndef COUNT_H
#define COUNT_H
#include <stddef.h>
#include <stdio.h>

struct counts {
    size_t lines, words, bytes, utf8_chars;
};

void count_stream(FILE *in, struct counts *c);
#endif
