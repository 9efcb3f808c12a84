-- carbonplan store at schema revision 0001, with sample rows.
-- Made once by the 0001 migration; kept to test that later releases open it.
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0001');
CREATE TABLE forecasts (
	id INTEGER NOT NULL, 
	zone VARCHAR NOT NULL, 
	provider VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	signal VARCHAR NOT NULL, 
	issued_at DATETIME NOT NULL, 
	fetched_at DATETIME NOT NULL, 
	start DATETIME NOT NULL, 
	step_s INTEGER NOT NULL, 
	values_json TEXT NOT NULL, 
	flags_json TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE job_events (
	id INTEGER NOT NULL, 
	job_id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	from_state VARCHAR, 
	to_state VARCHAR NOT NULL, 
	reason VARCHAR NOT NULL, 
	actor VARCHAR NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);
INSERT INTO "job_events" VALUES(1,1,'2026-11-23 12:00:00.000000',NULL,'queued','submitted','cli');
INSERT INTO "job_events" VALUES(2,2,'2026-11-23 12:00:00.000000',NULL,'queued','submitted','cli');
INSERT INTO "job_events" VALUES(3,1,'2026-11-23 12:00:00.000000','queued','planned','plan 1','planner');
CREATE TABLE jobs (
	id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	user VARCHAR NOT NULL, 
	project VARCHAR NOT NULL, 
	state VARCHAR NOT NULL, 
	command_json TEXT, 
	script VARCHAR, 
	gpus INTEGER NOT NULL, 
	gpu_types_json TEXT NOT NULL, 
	mig VARCHAR, 
	hours FLOAT NOT NULL, 
	deadline DATETIME NOT NULL, 
	not_before DATETIME, 
	checkpoint_every_h FLOAT, 
	checkpoint_cost_h FLOAT NOT NULL, 
	pausable BOOLEAN NOT NULL, 
	spot BOOLEAN NOT NULL, 
	regions_json TEXT NOT NULL, 
	home_region VARCHAR, 
	watts FLOAT, 
	workdir VARCHAR, 
	env_json TEXT NOT NULL, 
	source VARCHAR NOT NULL, 
	external_id VARCHAR, 
	submitted_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_jobs_external_id UNIQUE (external_id)
);
INSERT INTO "jobs" VALUES(1,'train-llm','alice','nlp','planned','["python", "train.py"]',NULL,4,'["a100"]',NULL,6.0,'2026-11-25 00:00:00.000000',NULL,0.5,0.1,1,1,'["eu-*"]',NULL,NULL,NULL,'{"SEED": "1"}','cli',NULL,'2026-11-23 12:00:00.000000','2026-11-23 12:00:00.000000');
INSERT INTO "jobs" VALUES(2,'infer','bob','vision','queued','["python", "infer.py"]',NULL,1,'[]','3g.40gb',1.0,'2026-11-24 00:00:00.000000',NULL,NULL,0.0,0,0,'[]',NULL,150.0,NULL,'{}','cli',NULL,'2026-11-23 12:00:00.000000','2026-11-23 12:00:00.000000');
CREATE TABLE placements (
	id INTEGER NOT NULL, 
	plan_id INTEGER NOT NULL, 
	job_id INTEGER NOT NULL, 
	pool VARCHAR NOT NULL, 
	start DATETIME NOT NULL, 
	"end" DATETIME NOT NULL, 
	segments_json TEXT NOT NULL, 
	units FLOAT NOT NULL, 
	energy_kwh FLOAT NOT NULL, 
	kg_co2e FLOAT NOT NULL, 
	embodied_kg FLOAT NOT NULL, 
	cost_usd FLOAT NOT NULL, 
	explanation_json TEXT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_placements_plan_job UNIQUE (plan_id, job_id), 
	FOREIGN KEY(plan_id) REFERENCES plans (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);
INSERT INTO "placements" VALUES(1,1,1,'eu-north-1/a100-80gb/spot','2026-11-23 15:00:00.000000','2026-11-23 21:00:00.000000','[]',4.0,12.5,0.3,0.0,20.0,'{}');
CREATE TABLE plans (
	id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	"trigger" VARCHAR NOT NULL, 
	solver VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	objective FLOAT NOT NULL, 
	bound FLOAT NOT NULL, 
	gap FLOAT NOT NULL, 
	seconds FLOAT NOT NULL, 
	iterations INTEGER NOT NULL, 
	n_columns INTEGER NOT NULL, 
	slot_h FLOAT NOT NULL, 
	carbon_price_usd_per_t FLOAT NOT NULL, 
	unplanned_json TEXT NOT NULL, 
	details_json TEXT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "plans" VALUES(1,'2026-11-23 12:00:00.000000','manual','highs','optimal',10.0,9.9,0.01,0.2,0,0,1.0,0.0,'{"2": "capacity"}','{}');
CREATE INDEX ix_jobs_user ON jobs (user);
CREATE INDEX ix_jobs_state ON jobs (state);
CREATE INDEX ix_job_events_job_id ON job_events (job_id);
CREATE INDEX ix_plans_created_at ON plans (created_at);
CREATE INDEX ix_placements_plan_id ON placements (plan_id);
CREATE INDEX ix_placements_job_id ON placements (job_id);
CREATE INDEX ix_forecasts_lookup ON forecasts (zone, provider, kind, issued_at);
