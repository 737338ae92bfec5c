/*
 * chat.c — the Gemma chat templates for one user turn (docs/models.md#chat-template).
 *
 * Gemma 1/2/3: output matches llama.cpp's built-in "gemma" template
 * (LLM_CHAT_TEMPLATE_GEMMA, add_ass = true): Gemma has no system role, so
 * the system text is put in front of the user text with a blank line, and
 * both are trimmed of ASCII whitespace first as llama.cpp's trim() does.
 * An empty (or all-blank) system text adds nothing.
 *
 * Gemma 4: output matches the official Jinja template (as shipped in
 * llama.cpp's models/templates/google-gemma-4-31B-it.jinja) rendered with
 * add_generation_prompt and thinking off: a system turn when there is a
 * system message, the user turn, then the model turn opened with an empty
 * thought channel.  Texts are trimmed as Jinja's trim does (Python's
 * str.strip: Unicode whitespace).  llama.cpp has no built-in Gemma 4
 * template; it runs the GGUF's Jinja.
 *
 * The leading <bos> is left to the tokenizer in both.
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

/* ------------------------------------------------------------- Gemma 4 */

static const char g4_system[] = "<|turn>system\n";
static const char g4_user[] = "<|turn>user\n";
static const char g4_end[] = "<turn|>\n";
/* Thinking off: the template opens the model turn with an empty thought. */
static const char g4_model[] = "<|turn>model\n<|channel>thought\n<channel|>";

/* Python's str.isspace() for a code point: the characters Jinja's trim
 * strips. */
static bool is_py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* Decodes the well-formed UTF-8 character at s[0..n) into *cp; returns
 * its length, or 0 if the bytes are not one (then trimming stops). */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t k = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2
             : s[0] >= 0xE0 && s[0] <= 0xEF ? 3 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (k == 0 || k > n)
        return 0;
    uint32_t c = k == 1 ? s[0] : s[0] & (0x7Fu >> k);
    for (size_t j = 1; j < k; j++) {
        if ((s[j] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[j] & 0x3Fu);
    }
    *cp = c;
    return k;
}

/* Start of the UTF-8 character that ends at s[e - 1] (at most 4 back). */
static size_t char_start(const unsigned char *s, size_t b, size_t e)
{
    size_t i = e - 1;
    while (i > b && e - i < 4 && (s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

/* Narrows s to its range without leading and trailing Unicode
 * whitespace. */
static void trim_unicode(const char *s, const char **start, size_t *len)
{
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    size_t b = 0, e = strlen((const char *)u);
    uint32_t cp;
    size_t k;
    while (b < e && (k = utf8_char(u + b, e - b, &cp)) > 0 && is_py_space(cp))
        b += k;
    while (e > b) {
        size_t i = char_start(u, b, e);
        if (utf8_char(u + i, e - i, &cp) != e - i || !is_py_space(cp))
            break;
        e = i;
    }
    *start = (const char *)u + b;
    *len = e - b;
}

/* Gemma 4: <|turn>system\n{system}<turn|>\n (only when system is not NULL,
 * even if empty, as the template does for a system message),
 * <|turn>user\n{user}<turn|>\n, then the model turn. */
static char *format_gemma4(const char *system, const char *user)
{
    const char *sys, *usr;
    size_t ns, nu;
    trim_unicode(system, &sys, &ns);
    trim_unicode(user, &usr, &nu);
    size_t fixed = sizeof g4_system + sizeof g4_user + 2 * sizeof g4_end +
                   sizeof g4_model;
    if (ns > SIZE_MAX - fixed - nu)
        return NULL;
    char *out = malloc(fixed + ns + nu);
    if (!out)
        return NULL;
    char *p = out;
    if (system) {
        p = put(p, g4_system, sizeof g4_system - 1);
        p = put(p, sys, ns);
        p = put(p, g4_end, sizeof g4_end - 1);
    }
    p = put(p, g4_user, sizeof g4_user - 1);
    p = put(p, usr, nu);
    p = put(p, g4_end, sizeof g4_end - 1);
    p = put(p, g4_model, sizeof g4_model - 1);
    *p = '\0';
    return out;
}

gmrt_chat_style gmrt_chat_style_of(const gmrt_vocab *v)
{
    if (v && (gmrt_vocab_is_bpe(v) || gmrt_vocab_find(v, "<|turn>", 7) >= 0))
        return GMRT_CHAT_GEMMA4;
    return GMRT_CHAT_GEMMA;
}

char *gmrt_chat_format_style(gmrt_chat_style style, const char *system,
                             const char *user)
{
    return style == GMRT_CHAT_GEMMA4 ? format_gemma4(system, user)
                                     : gmrt_chat_format(system, user);
}
