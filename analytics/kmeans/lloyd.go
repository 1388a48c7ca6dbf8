package kmeans

import "math"

// lloyd iterates from the seeded centres until no label changes, the centres
// move less than tol (summed squared movement) or maxIter updates, and
// returns the number of centre updates.
//
// It is Lloyd's algorithm with Hamerly's (2010) bounds: each point keeps an
// upper bound u on the distance to its own centre and a lower bound l on the
// distance to any other. When centres move, u grows by its centre's movement
// and l shrinks by the largest movement of the others; a point whose u is
// below max(l, half the distance from its centre to the nearest other centre)
// cannot change cluster and is skipped without computing any distance. On
// clustered data most points are skipped after a few iterations. The result is
// exactly Lloyd's.
//
// It starts from the assignment seeding left in r.a and r.dist (each point's
// nearest seed and squared distance), so the first pass costs nothing extra.
func (r *runner) lloyd(maxIter int, tol float64) int {
	r.halfGaps()
	r.assignFromSeed()
	k, d := r.k, r.d
	iters := 0
	for iters < maxIter {
		iters++
		r.fixEmpty()
		var shift float64
		for j := 0; j < k; j++ {
			cn, co := r.cNew[j*d:(j+1)*d], r.c[j*d:(j+1)*d]
			inv := 1 / float64(r.counts[j])
			for f := range cn {
				cn[f] = r.sums[j*d+f] * inv
			}
			m := sqDist(cn, co)
			r.p[j] = math.Sqrt(m)
			shift += m
		}
		r.c, r.cNew = r.cNew, r.c
		// Largest and second largest movement: a point's lower bound shrinks by
		// the largest movement among the centres other than its own.
		p1, p2, j1 := 0.0, 0.0, -1
		for j, v := range r.p {
			if v > p1 {
				p1, p2, j1 = v, p1, j
			} else if v > p2 {
				p2 = v
			}
		}
		r.halfGaps()
		if r.assignBounded(p1, p2, int32(j1)) == 0 || shift <= tol {
			break
		}
	}
	return iters
}

// halfGaps sets s[j] to half the distance from centre j to its nearest other
// centre: a point closer than that to its centre is closest to it.
func (r *runner) halfGaps() {
	k, d := r.k, r.d
	for j := range r.s {
		r.s[j] = math.Inf(1)
	}
	for j := 0; j < k; j++ {
		cj := r.c[j*d : (j+1)*d]
		for j2 := j + 1; j2 < k; j2++ {
			h := 0.5 * math.Sqrt(sqDist(cj, r.c[j2*d:(j2+1)*d]))
			r.s[j] = math.Min(r.s[j], h)
			r.s[j2] = math.Min(r.s[j2], h)
		}
	}
}

// nearest2 returns the nearest centre to x, the distance to it and the
// distance to the second nearest. Distances are computed four centres at a
// time into dd (k long): one pass of independent sums is cheaper than
// pruning centre by centre, which branches at every step.
func (r *runner) nearest2(x, dd []float64) (int32, float64, float64) {
	d, k := r.d, r.k
	c := r.c
	j := 0
	for ; j+4 <= k; j += 4 {
		dd[j], dd[j+1], dd[j+2], dd[j+3] = dist4(x, c[j*d:(j+1)*d], c[(j+1)*d:(j+2)*d], c[(j+2)*d:(j+3)*d], c[(j+3)*d:(j+4)*d])
	}
	for ; j < k; j++ {
		dd[j] = sqDist(x, c[j*d:(j+1)*d])
	}
	best, d1, d2 := int32(0), math.Inf(1), math.Inf(1)
	for j, v := range dd[:k] {
		if v < d1 {
			best, d1, d2 = int32(j), v, d1
		} else if v < d2 {
			d2 = v
		}
	}
	return best, math.Sqrt(d1), math.Sqrt(d2)
}

// assignAll assigns every point exactly and rebuilds sums and counts.
func (r *runner) assignAll() {
	d := r.d
	r.parallel(func(w, lo, hi int) {
		pt := &r.part[w]
		clear(pt.sums)
		clear(pt.counts)
		for i := lo; i < hi; i++ {
			x := r.x[i*d : (i+1)*d]
			a, d1, d2 := r.nearest2(x, pt.dd)
			r.a[i], r.u[i], r.l[i] = a, d1, d2
			s := pt.sums[int(a)*d : (int(a)+1)*d]
			for f, v := range x {
				s[f] += v
			}
			pt.counts[a]++
		}
	})
	clear(r.sums)
	clear(r.counts)
	r.merge()
}

// assignFromSeed takes the nearest-seed assignment computed while seeding:
// u is exact, and l = 0 is a valid (if useless) lower bound that makes the
// first bounded pass check every point not protected by the half gap.
func (r *runner) assignFromSeed() {
	d := r.d
	r.parallel(func(w, lo, hi int) {
		pt := &r.part[w]
		for i := lo; i < hi; i++ {
			a := r.a[i]
			r.u[i], r.l[i] = math.Sqrt(r.dist[i]), 0
			s := pt.sums[int(a)*d : (int(a)+1)*d]
			for f, v := range r.x[i*d : (i+1)*d] {
				s[f] += v
			}
			pt.counts[a]++
		}
	})
	clear(r.sums)
	clear(r.counts)
	r.merge()
}

// merge adds the workers' partial sums and counts into the totals.
func (r *runner) merge() int {
	changed := 0
	for w := range r.part {
		pt := &r.part[w]
		for i, v := range pt.sums {
			r.sums[i] += v
		}
		for j, v := range pt.counts {
			r.counts[j] += v
		}
		changed += pt.changed
		// Leave partials zeroed: a worker that gets no chunk must not
		// contribute stale values to the next merge.
		clear(pt.sums)
		clear(pt.counts)
		pt.changed = 0
	}
	return changed
}

// assignBounded updates bounds after the centres moved, reassigns the points
// whose bounds no longer prove their assignment, and returns how many points
// changed cluster.
func (r *runner) assignBounded(p1, p2 float64, j1 int32) int {
	d := r.d
	r.parallel(func(w, lo, hi int) {
		pt := &r.part[w]
		clear(pt.sums)
		clear(pt.counts)
		pt.changed = 0
		for i := lo; i < hi; i++ {
			a := r.a[i]
			r.u[i] += r.p[a]
			if a == j1 {
				r.l[i] -= p2
			} else {
				r.l[i] -= p1
			}
			m := r.s[a]
			if r.l[i] > m {
				m = r.l[i]
			}
			if r.u[i] <= m {
				continue
			}
			x := r.x[i*d : (i+1)*d]
			r.u[i] = math.Sqrt(sqDist(x, r.c[int(a)*d:(int(a)+1)*d]))
			if r.u[i] <= m {
				continue
			}
			b, d1, d2 := r.nearest2(x, pt.dd)
			r.u[i], r.l[i] = d1, d2
			if b == a {
				continue
			}
			r.a[i] = b
			pt.changed++
			pt.counts[a]--
			pt.counts[b]++
			sa, sb := pt.sums[int(a)*d:(int(a)+1)*d], pt.sums[int(b)*d:(int(b)+1)*d]
			for f, v := range x {
				sa[f] -= v
				sb[f] += v
			}
		}
	})
	return r.merge()
}

// fixEmpty gives each empty cluster the point farthest from its centre (taken
// from clusters that keep at least one point), as scikit-learn does; the point
// then is the new centre, so its bounds are reset to force a check.
func (r *runner) fixEmpty() {
	d := r.d
	for j := 0; j < r.k; j++ {
		if r.counts[j] > 0 {
			continue
		}
		far, fd := -1, -1.0
		for i := 0; i < r.n; i++ {
			a := r.a[i]
			if r.counts[a] < 2 {
				continue
			}
			if v := sqDist(r.x[i*d:(i+1)*d], r.c[int(a)*d:(int(a)+1)*d]); v > fd {
				far, fd = i, v
			}
		}
		if far < 0 {
			return // fewer points than clusters; seeding rules this out
		}
		a := r.a[far]
		x := r.x[far*d : (far+1)*d]
		for f, v := range x {
			r.sums[int(a)*d+f] -= v
			r.sums[j*d+f] += v
		}
		r.counts[a]--
		r.counts[j]++
		r.a[far] = int32(j)
		r.u[far], r.l[far] = 0, 0
	}
}

// inertia is the exact within-cluster sum of squares of the current state.
func (r *runner) inertia() float64 {
	d := r.d
	r.parallel(func(w, lo, hi int) {
		var s float64
		for i := lo; i < hi; i++ {
			a := int(r.a[i])
			s += sqDist(r.x[i*d:(i+1)*d], r.c[a*d:(a+1)*d])
		}
		r.part[w].val = s
	})
	var s float64
	for w := range r.part {
		s += r.part[w].val
		r.part[w].val = 0
	}
	return s
}
