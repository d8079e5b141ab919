-- The commit ceiling: one INSERT per transaction.
INSERT INTO commit_probe (v) VALUES (1);
