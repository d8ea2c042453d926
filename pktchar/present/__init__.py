"""The presentation layer: results as tables (views), rendered to rich, md, csv, tex and json
(render), figures, and report folders. It formats; it does not measure or predict."""
