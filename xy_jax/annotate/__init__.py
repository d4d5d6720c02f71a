"""Human annotation of model outputs: GSB evaluation and preference pairs, over one SQLite database.

db: the schema and connections; raters: tokens and sessions; items: import and assignment;
votes: recording and importing votes; report: majorities, rates and agreement; export: chosen /
rejected pairs; server: the raters' web pages; candidates: sampled answers made into items.
"""
