// The paper's performance profile (the SLOs-Serve authors' OPT-6.7B fit) relabelled for a fixture
// model's depth. createEngine refuses a profile measured on a model with other layers; tests that
// plan a tiny model with the paper's step times say so here.

import { readFileSync } from 'node:fs';
import { PROFILES } from '../../src/sim/profiles.js';
import { fixtureDir, type FixtureModel } from './fixtures.js';

export function fixtureLayers(model: FixtureModel): number {
  const config = JSON.parse(readFileSync(`${fixtureDir(model)}/config.json`, 'utf8')) as { num_hidden_layers: number };
  return config.num_hidden_layers;
}

export function paperProfileFor(model: FixtureModel): unknown {
  return { ...(PROFILES.paper as object), layers: fixtureLayers(model) };
}
