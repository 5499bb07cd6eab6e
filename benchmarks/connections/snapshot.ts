/**
 * Reads a V8 heap snapshot (the .heapsnapshot JSON that `v8.writeHeapSnapshot` writes) and
 * answers two questions heap.ts asks of it: how many objects of each kind, and how many bytes
 * (self size), and what each object retains (its dominator subtree: what would become garbage
 * if it went).
 *
 * Format (V8's heap-snapshot-generator): `nodes` is a flat array of `node_fields` per node
 * (type, name, id, self_size, edge_count, …), `edges` a flat array of `edge_fields` per edge
 * (type, name_or_index, to_node — an offset into `nodes`), a node's edges following those of the
 * node before it; `strings` holds the names. Node 0 is the synthetic root.
 *
 * Dominators: Cooper, Harvey and Kennedy, "A Simple, Fast Dominance Algorithm" (2001), on the
 * graph without weak edges, over a reverse postorder of a depth-first walk from the root.
 */
import { readFileSync } from 'node:fs';

interface RawSnapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: string[];
      readonly node_types: [string[], ...unknown[]];
      readonly edge_fields: string[];
      readonly edge_types: [string[], ...unknown[]];
    };
  };
  readonly nodes: number[];
  readonly edges: number[];
  readonly strings: string[];
}

/** Containers whose own name says nothing: they are named after what holds them. */
const GENERIC = new Set(['Array', 'Object', 'Map', 'Set', 'WeakMap', 'system / Context']);

export class HeapSnapshot {
  readonly nodeCount: number;
  private readonly nodeTypes: Uint8Array;
  private readonly nodeNames: Uint32Array;
  readonly selfSize: Float64Array;
  private readonly firstEdge: Uint32Array;
  private readonly edgeTypes: Uint8Array;
  private readonly edgeNames: Uint32Array;
  private readonly edgeTo: Uint32Array;
  private readonly typeNames: string[];
  private readonly edgeTypeNames: string[];
  private readonly strings: string[];
  /** Immediate dominator of each node (the root's is itself; unreachable nodes: -1). */
  readonly idom: Int32Array;
  /** Self size of each node plus that of every node it dominates. */
  readonly retained: Float64Array;
  private readonly keys: (string | undefined)[];

  constructor(file: string) {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as RawSnapshot;
    const meta = raw.snapshot.meta;
    const nf = meta.node_fields.length;
    const ef = meta.edge_fields.length;
    const nType = meta.node_fields.indexOf('type');
    const nName = meta.node_fields.indexOf('name');
    const nSelf = meta.node_fields.indexOf('self_size');
    const nEdges = meta.node_fields.indexOf('edge_count');
    const eType = meta.edge_fields.indexOf('type');
    const eName = meta.edge_fields.indexOf('name_or_index');
    const eTo = meta.edge_fields.indexOf('to_node');
    this.typeNames = meta.node_types[0];
    this.edgeTypeNames = meta.edge_types[0];
    this.strings = raw.strings;
    const n = raw.nodes.length / nf;
    const m = raw.edges.length / ef;
    this.nodeCount = n;
    this.nodeTypes = new Uint8Array(n);
    this.nodeNames = new Uint32Array(n);
    this.selfSize = new Float64Array(n);
    this.firstEdge = new Uint32Array(n + 1);
    for (let i = 0, e = 0; i < n; i++) {
      this.nodeTypes[i] = raw.nodes[i * nf + nType] as number;
      this.nodeNames[i] = raw.nodes[i * nf + nName] as number;
      this.selfSize[i] = raw.nodes[i * nf + nSelf] as number;
      this.firstEdge[i] = e;
      e += raw.nodes[i * nf + nEdges] as number;
      this.firstEdge[i + 1] = e;
    }
    this.edgeTypes = new Uint8Array(m);
    this.edgeNames = new Uint32Array(m);
    this.edgeTo = new Uint32Array(m);
    for (let j = 0; j < m; j++) {
      this.edgeTypes[j] = raw.edges[j * ef + eType] as number;
      this.edgeNames[j] = raw.edges[j * ef + eName] as number;
      this.edgeTo[j] = (raw.edges[j * ef + eTo] as number) / nf;
    }
    this.idom = new Int32Array(n).fill(-1);
    this.retained = new Float64Array(n);
    this.keys = new Array(n);
    this.dominators();
  }

  type(i: number): string {
    return this.typeNames[this.nodeTypes[i] as number] as string;
  }

  name(i: number): string {
    return this.strings[this.nodeNames[i] as number] as string;
  }

  private edgeLabel(j: number): string {
    const t = this.edgeTypeNames[this.edgeTypes[j] as number];
    const v = this.edgeNames[j] as number;
    // Indices would make every slot a kind of its own.
    return t === 'element' || t === 'hidden' ? '[]' : (this.strings[v] as string);
  }

  private dominators(): void {
    const n = this.nodeCount;
    const weak = this.edgeTypeNames.indexOf('weak');
    // Postorder by an iterative depth-first walk from the root.
    const post = new Int32Array(n).fill(-1); // node → postorder number
    const order = new Int32Array(n); // postorder number → node
    const stack = new Int32Array(n);
    const cursor = new Uint32Array(n);
    const seen = new Uint8Array(n);
    let sp = 0;
    let count = 0;
    stack[sp++] = 0;
    seen[0] = 1;
    cursor[0] = this.firstEdge[0] as number;
    while (sp > 0) {
      const v = stack[sp - 1] as number;
      const end = this.firstEdge[v + 1] as number;
      let e = cursor[v] as number;
      while (e < end && (this.edgeTypes[e] === weak || seen[this.edgeTo[e] as number] === 1)) e++;
      if (e < end) {
        cursor[v] = e + 1;
        const w = this.edgeTo[e] as number;
        seen[w] = 1;
        cursor[w] = this.firstEdge[w] as number;
        stack[sp++] = w;
      } else {
        sp--;
        post[v] = count;
        order[count++] = v;
      }
    }
    // Predecessors of every reachable node, in postorder numbers (compressed rows).
    const predStart = new Uint32Array(count + 1);
    for (let v = 0; v < n; v++) {
      if ((post[v] as number) < 0) continue;
      for (let e = this.firstEdge[v] as number; e < (this.firstEdge[v + 1] as number); e++) {
        if (this.edgeTypes[e] === weak) continue;
        const w = post[this.edgeTo[e] as number] as number;
        if (w >= 0) predStart[w + 1] = (predStart[w + 1] as number) + 1;
      }
    }
    for (let i = 0; i < count; i++) predStart[i + 1] = (predStart[i + 1] as number) + (predStart[i] as number);
    const preds = new Int32Array(predStart[count] as number);
    const fill = predStart.slice(0, count);
    for (let v = 0; v < n; v++) {
      const pv = post[v] as number;
      if (pv < 0) continue;
      for (let e = this.firstEdge[v] as number; e < (this.firstEdge[v + 1] as number); e++) {
        if (this.edgeTypes[e] === weak) continue;
        const w = post[this.edgeTo[e] as number] as number;
        if (w >= 0) preds[(fill[w] as number)++] = pv;
      }
    }
    // Iterate to the fixpoint in reverse postorder; the root has the highest number.
    const root = count - 1;
    const dom = new Int32Array(count).fill(-1);
    dom[root] = root;
    let changed = true;
    while (changed) {
      changed = false;
      for (let b = root - 1; b >= 0; b--) {
        let d = -1;
        for (let k = predStart[b] as number; k < (predStart[b + 1] as number); k++) {
          const p = preds[k] as number;
          if (dom[p] === -1) continue;
          if (d === -1) {
            d = p;
            continue;
          }
          let f1 = p;
          let f2 = d;
          while (f1 !== f2) {
            while (f1 < f2) f1 = dom[f1] as number;
            while (f2 < f1) f2 = dom[f2] as number;
          }
          d = f1;
        }
        if (d !== -1 && dom[b] !== d) {
          dom[b] = d;
          changed = true;
        }
      }
    }
    for (let b = 0; b < count; b++) {
      const v = order[b] as number;
      this.idom[v] = dom[b] === -1 ? -1 : (order[dom[b] as number] as number);
      const total = (this.retained[v] as number) + (this.selfSize[v] as number);
      this.retained[v] = total;
      // A dominator comes later in postorder: its own total is still open.
      if (b !== root && dom[b] !== -1) {
        const d = order[dom[b] as number] as number;
        this.retained[d] = (this.retained[d] as number) + total;
      }
    }
  }

  /**
   * What a node is, for counting: its constructor's name; for a closure its function's name; for
   * containers and V8's internal arrays, contexts, strings and numbers, the object that holds them
   * (its dominator) and the edge from it — `OutboundQueue.chunks (Array)` — to two levels.
   */
  key(i: number, depth = 0): string {
    const cached = depth === 0 ? this.keys[i] : undefined;
    if (cached !== undefined) return cached;
    const type = this.type(i);
    const name = this.name(i);
    let k: string;
    if (type === 'object' && !GENERIC.has(name)) k = name;
    else if (type === 'closure') k = `${name === '' ? '(anonymous)' : name}() closure`;
    else {
      const tag =
        (type === 'object' || type === 'array' || type === 'hidden' || type === 'native') && name !== ''
          ? name
          : type.includes('string')
            ? '(string)'
            : `(${type})`;
      const d = this.idom[i] as number;
      if (d < 0 || d === i || d === 0 || depth >= 2) k = `(${tag})`;
      else {
        let via = '…';
        for (let e = this.firstEdge[d] as number; e < (this.firstEdge[d + 1] as number); e++) {
          if (this.edgeTo[e] === i) {
            via = this.edgeLabel(e);
            break;
          }
        }
        k = `${this.key(d, depth + 1)}.${via} (${tag})`;
      }
    }
    if (depth === 0) this.keys[i] = k;
    return k;
  }

  /** Count and self bytes per key, over every node reachable from the root. */
  census(): Map<string, { count: number; bytes: number }> {
    const out = new Map<string, { count: number; bytes: number }>();
    for (let i = 0; i < this.nodeCount; i++) {
      if (this.idom[i] === -1) continue;
      const k = this.key(i);
      const c = out.get(k);
      if (c === undefined) out.set(k, { count: 1, bytes: this.selfSize[i] as number });
      else {
        c.count++;
        c.bytes += this.selfSize[i] as number;
      }
    }
    return out;
  }

  /** Nodes whose key is `key`. */
  nodesOf(key: string): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.nodeCount; i++) if (this.idom[i] !== -1 && this.key(i) === key) out.push(i);
    return out;
  }
}
