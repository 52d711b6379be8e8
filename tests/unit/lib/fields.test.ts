import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fieldsOf } from '../../../src/lib/fields';

interface Opts {
  readonly id: string;
  readonly name: string;
  readonly flag?: boolean;
  readonly secret: string;
}

class Thing extends fieldsOf<Opts>()('id', 'name', 'flag') {
  readonly extra: number;
  constructor(o: Opts) {
    super(o);
    this.extra = o.id.length;
  }
}

test('fieldsOf: the named fields are copied from the argument, the others are not', () => {
  const t = new Thing({ id: 'abc', name: 'cam', flag: false, secret: 's3' });
  assert.equal(t.id, 'abc');
  assert.equal(t.name, 'cam');
  assert.equal(t.flag, false, 'a false optional is kept');
  assert.equal(t.extra, 3, 'the subclass sees them in its constructor');
  assert.equal((t as unknown as { secret?: string }).secret, undefined);
  assert.deepEqual(Object.keys(t).sort(), ['extra', 'flag', 'id', 'name'], 'enumerable, like declared fields');
  assert.ok(t instanceof Thing);
});

test('fieldsOf: an absent optional stays absent; the fields are read-only', () => {
  const t = new Thing({ id: 'x', name: 'n', secret: '' });
  assert.equal('flag' in t, false);
  assert.throws(() => {
    (t as unknown as { id: string }).id = 'y';
  }, TypeError);
  assert.equal(t.id, 'x');
});
