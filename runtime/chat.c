/*
 * chat.c — the Gemma 1/2/3 chat template for one user turn (docs/models.md#chat-template).
 *
 * Output matches llama.cpp's built-in "gemma" template
 * (LLM_CHAT_TEMPLATE_GEMMA, add_ass = true): Gemma has no system role, so
 * the system text is put in front of the user text with a blank line, and
 * both are trimmed of ASCII whitespace first as llama.cpp's trim() does.
 * An empty (or all-blank) system text adds nothing.  The leading <bos> is
 * left to the tokenizer.
 */
#include "gmrt.h"

#include <stdlib.h>
#include <string.h>

static const char turn_user[] = "<start_of_turn>user\n";
static const char turn_end[] = "<end_of_turn>\n<start_of_turn>model\n";

/* isspace() in the "C" locale, spelled out so that the locale cannot
 * change which bytes are trimmed. */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/* Narrows s to its trimmed range [*start, *start + *len). */
static void trim(const char *s, const char **start, size_t *len)
{
    size_t b = 0, e = s ? strlen(s) : 0;
    while (b < e && is_blank(s[b]))
        b++;
    while (e > b && is_blank(s[e - 1]))
        e--;
    *start = s ? s + b : "";
    *len = e - b;
}

static char *put(char *dst, const char *src, size_t n)
{
    memcpy(dst, src, n);
    return dst + n;
}

char *gmrt_chat_format(const char *system, const char *user)
{
    const char *sys, *usr;
    size_t ns, nu;
    trim(system, &sys, &ns);
    trim(user, &usr, &nu);
    size_t fixed = sizeof turn_user - 1 + sizeof turn_end - 1 + 2 + 1;
    /* Both lengths come from strlen of live strings, so their sum cannot
     * wrap; the check keeps that true if the inputs ever change. */
    if (ns > SIZE_MAX - fixed - nu)
        return NULL;
    char *out = malloc(fixed + ns + nu);
    if (!out)
        return NULL;
    char *p = put(out, turn_user, sizeof turn_user - 1);
    if (ns > 0) {
        p = put(p, sys, ns);
        p = put(p, "\n\n", 2);
    }
    p = put(p, usr, nu);
    p = put(p, turn_end, sizeof turn_end - 1);
    *p = '\0';
    return out;
}
