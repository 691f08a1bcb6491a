#!/usr/bin/env node
import { notImplemented } from './common';

notImplemented('u2pl-eval');
