-- The existing todo app's tables (users, tasks), exactly as Phase II shipped them.
--
-- This is the baseline that Phase II databases already have. Every statement is
-- IF NOT EXISTS, so applying it to a Phase II database adopts the live tables
-- unchanged (no `yoyo mark` needed), and applying it to an empty database creates
-- them. The next migration brings both cases to the same sound shape.
-- Constraint names are the ones PostgreSQL generated for the Phase II DDL, written
-- out so that both paths end with identical names.
-- depends:
-- Phase II's legacy types, kept so that live Phase II tables match; 0002 corrects them.
-- squawk-ignore-file prefer-timestamp-tz,prefer-bigint-over-int,prefer-identity,prefer-text-field

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

CREATE TABLE IF NOT EXISTS users (
    id         varchar CONSTRAINT users_pkey PRIMARY KEY,
    email      varchar NOT NULL CONSTRAINT users_email_key UNIQUE,
    name       varchar,
    created_at timestamp DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS tasks (
    id          serial CONSTRAINT tasks_pkey PRIMARY KEY,
    user_id     varchar CONSTRAINT tasks_user_id_fkey REFERENCES users (id),
    title       varchar(200) NOT NULL,
    description text,
    completed   boolean DEFAULT false,
    created_at  timestamp DEFAULT CURRENT_TIMESTAMP,
    updated_at  timestamp DEFAULT CURRENT_TIMESTAMP
);
