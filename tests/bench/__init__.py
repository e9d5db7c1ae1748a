"""Benchmarks (not tests): `python -m tests.bench [updates|campaign|growth|startup|systems|all]`.

updates  (default) The same 5-update user journey (/start, age gate, /consents, a consent's
         terms, "I agree": 10 Bot API calls) through three dispatchers against the fake Bot API
         server, interleaved round by round so a noisy machine hits all three alike:
           A  a bare aiogram dispatcher whose trivial handlers make the same Bot API calls
              (same texts and keyboards, replayed from a recording of the bot);
           B  A plus one SQLAlchemy async session per update that reads the sender's row
              before the handler and upserts it after, then commits (stock SQLAlchemy aiosqlite
              engine, SQLite WAL, at most MAX_CONCURRENT_UPDATES in flight like the bot);
           C  the bot itself (production wiring, SQLite file).
         Prints updates/s (best and median over the rounds), the process CPU time per update
         (all threads; less sensitive to the other load on the machine), the ratios C/A and
         C/B, and per update of C: SQL statements, commits, pool checkouts and aiosqlite
         thread round trips.
campaign Campaign delivery: paced at BROADCAST_RATE=25, and uncapped (deliveries/s), and the
         resident memory of a campaign to `--recipients` users.
growth   A synthetic database (1,000,000 users, 10,000,000 consent events by default, built
         with bulk SQL): /consents p95, an export of a user with 10,000 events, an erasure and
         the longest time it holds the database.
startup  Start-up to the first getUpdates, the bot against a bare aiogram bot (subprocesses).
systems  One erasure request across three SQL systems (the hosting pack's demo account
         database, `--system-people` 100,000 people each, and `--system-small` 10,000): time
         per request, its growth with the table size, and the lookups' query plans (indexes
         used). Three SQLite files, or `--system-engines sqlite,postgresql,mariadb`.

Options: --users N --rounds R --concurrency C --recipients N --growth-users N --events N,
--system-people N --system-small N --system-requests N --system-engines E1,E2,E3,
--profile (cProfile, the top 40). Numbers depend on the machine; ratios measured in one run are
what to compare.

Modules: `__main__` (the arguments, running each benchmark), one module per benchmark
(`updates`, `campaign`, `growth`, `startup`, `systems`), `common` (the rider that drives a
dispatcher, the synthetic database, starting a child) and `child` (the processes started beside
the benchmark: `python -m tests.bench.child ...`). Nothing here is a test: pytest collects no
module of this package (no `test_` names).
"""
