-- The plan a confirmation's preview showed (targets, release and build, steps, options, the host facts
-- the pre-checks used), so ``yes`` runs that plan or refuses with what changed.

ALTER TABLE confirmations ADD COLUMN plan {json};
