-- "Blank" and "trimmed" mean what a person sees, in the database as in the API, one
-- rule for both (docs/decisions.md has examples). Three sets of characters:
--   spaces:     Unicode's White_Space (U+0009-000D, U+0020, U+0085, U+00A0, U+1680,
--               U+2000-200A, U+2028-2029, U+202F, U+205F, U+3000);
--   invisibles: characters that render as nothing on their own (control characters,
--               soft hyphen, zero-width space, direction marks and embeddings, word
--               joiner, BOM, Hangul fillers, braille blank ...);
--   attaching:  invisible characters that modify the character before them (zero-width
--               joiners, variation selectors, emoji tags).
-- Text is blank when it holds nothing but these; a title is trimmed when it does not
-- begin with any of them nor end with a space or an invisible (an attaching character
-- at the end belongs to the character it follows: the VS16 of "❤️"). Runs of spaces
-- in an automatic title fold to one space. chatstore._core holds the same sets; a test
-- compares them over every code point.
-- The CHECKs used [[:space:]], which depends on the server's locale and missed the
-- Unicode spaces: raw SQL could store what the API refuses. Task titles now follow the
-- conversation-title rule (trimmed, 1-200 characters); padded ones are trimmed here.
--
-- Locks: each table's CHECK is replaced NOT VALID (ACCESS EXCLUSIVE for milliseconds,
-- no scan, under lock_timeout); new rows obey it at once, and 0011 validates the rows
-- already there without blocking writes.
-- depends: chatstore_0009_tenant_primary_keys
-- squawk-ignore-file ban-drop-constraint

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

-- Each set as the body of a regular-expression bracket, written once.
CREATE FUNCTION chatstore_space_chars() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000';

CREATE FUNCTION chatstore_invisible_chars() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '\u0001-\u0008\u000E-\u001F\u007F-\u0084\u0086-\u009F\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180E\u200B\u200E\u200F\u202A-\u202E'
    '\u2060-\u2064\u2066-\u206F\u2800\u3164\uFEFF\uFFA0\U0001D159\U0001D173-\U0001D17A'
    '\U000E0001';

CREATE FUNCTION chatstore_attaching_chars() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '\u180B-\u180D\u180F\u200C\u200D\uFE00-\uFE0F\U000E0020-\U000E007F\U000E0100-\U000E01EF';

CREATE FUNCTION chatstore_is_blank(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN value !~ ('[^' || chatstore_space_chars() || chatstore_invisible_chars()
                 || chatstore_attaching_chars() || ']');

CREATE FUNCTION chatstore_trim(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN regexp_replace(
    value,
    '^[' || chatstore_space_chars() || chatstore_invisible_chars() || chatstore_attaching_chars()
    || ']+|[' || chatstore_space_chars() || chatstore_invisible_chars() || ']+$',
    '',
    'g'
);

-- The first n characters of value, shortened so as not to end inside a character a
-- person sees as one: a base with its combining marks, a ZWJ emoji sequence, a skin
-- tone, a keycap, a flag (a pair of regional indicators), a Devanagari or Bengali
-- conjunct. An approximation of Unicode's grapheme clusters (UAX #29) by explicit
-- ranges, independent of the server's locale; docs/decisions.md says what it covers.
-- Both branches take n + 1 characters and drop the whole cluster holding the last.
CREATE FUNCTION chatstore_cut(value text, n integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN CASE
    WHEN char_length(value) <= n THEN value
    -- Regional indicators pair from the start of their run: an even run ends with a
    -- whole flag (drop two), an odd one with half of the next (drop one).
    WHEN substr(value, n + 1, 1) ~ '[\U0001F1E6-\U0001F1FF]' THEN regexp_replace(
        left(value, n + 1),
        '(?<![\U0001F1E6-\U0001F1FF])((?:[\U0001F1E6-\U0001F1FF]{2})*)[\U0001F1E6-\U0001F1FF]{1,2}$',
        '\1'
    )
    -- Otherwise the last cluster starts at its base: any character, then joiners (each
    -- with the character it joins, if any) and extending marks.
    ELSE regexp_replace(
        left(value, n + 1),
        '.(?:[\u200D\u094D\u09CD].?'
        '|[\u0300-\u036F\u0483-\u0489\u0591-\u05BD\u05BF\u05C1\u05C2\u05C4\u05C5\u05C7'
        '\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06DC\u06DF-\u06E4\u06E7\u06E8\u06EA-\u06ED'
        '\u0900-\u0903\u093A-\u094F\u0951-\u0957\u0962\u0963\u0981-\u0983\u09BC-\u09D7'
        '\u0E31\u0E34-\u0E3A\u0E47-\u0E4E\u1AB0-\u1AFF\u1DC0-\u1DFF\u200C\u20D0-\u20FF'
        '\uFE00-\uFE0F\uFE20-\uFE2F\U0001F3FB-\U0001F3FF\U000E0020-\U000E007F'
        '\U000E0100-\U000E01EF])*$',
        ''
    )
END;

-- A title made from a message: runs of spaces folded to one space, trimmed,
-- cut at 200 characters without splitting one; NULL when nothing visible is left.
CREATE OR REPLACE FUNCTION chatstore_title_from(content text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(
    chatstore_trim(chatstore_cut(chatstore_trim(regexp_replace(
        chatstore_cut(content, 1000), '[' || chatstore_space_chars() || ']+', ' ', 'g'
    )), 200)),
    ''
);

-- What the API stored for a padded task title; Phase II may hold others. (Their
-- updated_at moves: the title changed.)
UPDATE tasks SET title = chatstore_trim(title) WHERE title <> chatstore_trim(title);

ALTER TABLE messages
    DROP CONSTRAINT messages_content_check,
    ADD CONSTRAINT messages_content_check
        CHECK (char_length(content) <= 32000 AND NOT chatstore_is_blank(content)) NOT VALID;

ALTER TABLE conversations
    DROP CONSTRAINT conversations_title_check,
    ADD CONSTRAINT conversations_title_check
        CHECK (char_length(title) >= 1 AND char_length(title) <= 200
               AND title = chatstore_trim(title)) NOT VALID;

ALTER TABLE tasks
    DROP CONSTRAINT tasks_title_check,
    ADD CONSTRAINT tasks_title_check
        CHECK (char_length(title) >= 1 AND char_length(title) <= 200
               AND title = chatstore_trim(title)) NOT VALID;

ALTER TABLE users
    DROP CONSTRAINT users_id_check,
    ADD CONSTRAINT users_id_check
        CHECK (char_length(id) >= 1 AND char_length(id) <= 255
               AND id !~ ('[' || chatstore_space_chars() || chatstore_invisible_chars()
                          || chatstore_attaching_chars() || ']')) NOT VALID,
    DROP CONSTRAINT users_email_check,
    ADD CONSTRAINT users_email_check
        CHECK (char_length(email) <= 320
               AND email ~ ('^[^@' || chatstore_space_chars() || chatstore_invisible_chars()
                            || ']+@[^@' || chatstore_space_chars() || chatstore_invisible_chars()
                            || ']+$')) NOT VALID;
