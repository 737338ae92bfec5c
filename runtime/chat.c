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
 * The leading <bos> is left to the tokenizer in both.  A template is a
 * list of parts, so that gmrt_chat_tokenize knows which control tokens the
 * markup put where: only those become control ids, and a "<end_of_turn>"
 * in the user's or the system's text stays text (it cannot close the turn
 * and forge a model turn).
 */
#include "gmrt.h"

#include <stdlib.h>
#include <string.h>

/* One piece of a template: markup, a control token of the markup, or the
 * caller's (trimmed) text. */
typedef struct part {
    const char *s;
    size_t n;
    bool ctrl;
} part;

#define MARK(lit) ((part){lit, sizeof lit - 1, false})
#define CTRL(lit) ((part){lit, sizeof lit - 1, true})
#define TEXT(p, n) ((part){p, n, false})
#define MAX_PARTS 20

/* A formatted turn: the text and where its control tokens start. */
typedef struct chat_text {
    char *s;
    size_t len;
    size_t ctrl_at[MAX_PARTS];
    size_t n_ctrl;
} chat_text;

/* Concatenates the parts into a malloc'd NUL-terminated string, noting the
 * offset of every control token.  False when out of memory. */
static bool join(const part *p, size_t n, chat_text *t)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        /* The lengths come from strlen of live strings, so the sum cannot
         * wrap; the check keeps that true if the inputs ever change. */
        if (p[i].n > SIZE_MAX - 1 - len)
            return false;
        len += p[i].n;
    }
    t->s = malloc(len + 1);
    if (!t->s)
        return false;
    t->len = 0;
    t->n_ctrl = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i].ctrl)
            t->ctrl_at[t->n_ctrl++] = t->len;
        memcpy(t->s + t->len, p[i].s, p[i].n);
        t->len += p[i].n;
    }
    t->s[len] = '\0';
    return true;
}

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

/* Gemma 1/2/3: <start_of_turn>user\n{system\n\n}{user}<end_of_turn>\n
 * <start_of_turn>model\n.  Returns the part count. */
static size_t gemma_parts(const char *system, const char *user, part *p)
{
    const char *sys, *usr;
    size_t ns, nu, n = 0;
    trim(system, &sys, &ns);
    trim(user, &usr, &nu);
    p[n++] = CTRL("<start_of_turn>");
    p[n++] = MARK("user\n");
    if (ns > 0) {
        p[n++] = TEXT(sys, ns);
        p[n++] = MARK("\n\n");
    }
    p[n++] = TEXT(usr, nu);
    p[n++] = CTRL("<end_of_turn>");
    p[n++] = MARK("\n");
    p[n++] = CTRL("<start_of_turn>");
    p[n++] = MARK("model\n");
    return n;
}

char *gmrt_chat_format(const char *system, const char *user)
{
    part p[MAX_PARTS];
    chat_text t;
    return join(p, gemma_parts(system, user, p), &t) ? t.s : NULL;
}

/* ------------------------------------------------------------- Gemma 4 */

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
 * <|turn>user\n{user}<turn|>\n, then the model turn opened with an empty
 * thought (thinking off).  Returns the part count. */
static size_t gemma4_parts(const char *system, const char *user, part *p)
{
    const char *sys, *usr;
    size_t ns, nu, n = 0;
    trim_unicode(system, &sys, &ns);
    trim_unicode(user, &usr, &nu);
    if (system) {
        p[n++] = CTRL("<|turn>");
        p[n++] = MARK("system\n");
        p[n++] = TEXT(sys, ns);
        p[n++] = CTRL("<turn|>");
        p[n++] = MARK("\n");
    }
    p[n++] = CTRL("<|turn>");
    p[n++] = MARK("user\n");
    p[n++] = TEXT(usr, nu);
    p[n++] = CTRL("<turn|>");
    p[n++] = MARK("\n");
    p[n++] = CTRL("<|turn>");
    p[n++] = MARK("model\n");
    p[n++] = CTRL("<|channel>");
    p[n++] = MARK("thought\n");
    p[n++] = CTRL("<channel|>");
    return n;
}

static size_t style_parts(gmrt_chat_style style, const char *system, const char *user,
                          part *p)
{
    return style == GMRT_CHAT_GEMMA4 ? gemma4_parts(system, user, p)
                                     : gemma_parts(system, user, p);
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
    part p[MAX_PARTS];
    chat_text t;
    return join(p, style_parts(style, system, user, p), &t) ? t.s : NULL;
}

gmrt_status gmrt_chat_tokenize(const gmrt_vocab *v, const char *system, const char *user,
                               bool add_bos, int32_t *out, size_t cap, size_t *out_n,
                               gmrt_diag *diag)
{
    part p[MAX_PARTS];
    chat_text t;
    if (!v || !out_n)
        return gmrt_fail(diag, GMRT_ERR_ARG, "gmrt_chat_tokenize: vocab or out_n is NULL");
    *out_n = 0;
    if (!join(p, style_parts(gmrt_chat_style_of(v), system, user, p), &t))
        return gmrt_fail(diag, GMRT_ERR_NOMEM, "out of memory formatting the chat prompt");
    gmrt_status st = gmrt_tokenize_marked(v, t.s, t.len, add_bos, t.ctrl_at, t.n_ctrl,
                                          out, cap, out_n, diag);
    free(t.s);
    return st;
}
