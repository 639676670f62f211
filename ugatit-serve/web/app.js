// The upload page: a square crop box over the chosen photo, the upload, the job's progress,
// the result, and deleting it. Plain DOM, no dependencies; served with a CSP that allows only
// this file, so nothing here may rely on inline scripts or style attributes in markup.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $('upload');
  const fileInput = $('image');
  const photo = $('photo');
  const cropSection = $('crop-section');
  const box = $('crop-box');
  const shade = $('shade');
  const cropValue = $('crop-value');
  const autoCrop = $('auto-crop');
  const noPreview = $('no-preview');
  const direction = $('direction');
  const email = $('email');
  const submit = $('submit');
  const statusLine = $('status');
  const errorLine = $('error');
  const jobSection = $('job');
  const cropView = $('crop-view');
  const cropViewImage = $('crop-view-image');
  const result = $('result');
  const resultImage = $('result-image');
  const download = $('download');
  const deleteButton = $('delete');

  // Where the API lives: the page's own origin unless <html data-api="https://..."> says
  // otherwise (a front end hosted elsewhere; the service then lists it in --cors-origin).
  const apiBase = (document.documentElement.dataset.api || '').replace(/\/+$/, '');
  const apiUrl = (path) => new URL(apiBase + path, window.location.href).href;
  // URLs the API answers with may be relative to the API's origin.
  const fromApi = (url) => new URL(url, apiBase ? apiBase + '/' : window.location.href).href;

  // Below this many CSS pixels a square is hard to grab; the corners stay usable above it.
  const MIN_BOX_CSS_PX = 32;
  // Polling: every second while the job moves, slowing to this while it waits in place.
  const POLL_FIRST_MS = 1000;
  const POLL_MAX_MS = 5000;

  let objectUrl = null;
  // The photo's size after EXIF orientation: browsers draw images oriented
  // (image-orientation: from-image), and naturalWidth/naturalHeight report that size, which is
  // the one the API's crop is measured in.
  let natural = null;
  // The crop in those pixels: whole numbers, so what is sent is exactly what is shown.
  let crop = null;
  let drag = null;
  let job = null;

  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

  function showStatus(text) {
    statusLine.textContent = text;
  }

  function showError(text) {
    errorLine.textContent = text;
    errorLine.hidden = !text;
  }

  // ---- the crop box ----------------------------------------------------------------------

  function cssPxPerImagePx() {
    return photo.clientWidth / natural.w;
  }

  function minSize() {
    const smallest = Math.ceil(MIN_BOX_CSS_PX / cssPxPerImagePx());
    return Math.min(natural.w, natural.h, Math.max(1, smallest));
  }

  function moved(from, dx, dy) {
    return {
      x: clamp(Math.round(from.x + dx), 0, natural.w - from.size),
      y: clamp(Math.round(from.y + dy), 0, natural.h - from.size),
      size: from.size,
    };
  }

  // Resizing from one corner keeps the opposite corner in place; the square follows whichever
  // of the pointer's two movements is larger, and stops at the image's edges.
  function resized(from, corner, dx, dy) {
    const east = corner[1] === 'e';
    const south = corner[0] === 's';
    const ax = east ? from.x : from.x + from.size;
    const ay = south ? from.y : from.y + from.size;
    const grow = Math.max(east ? dx : -dx, south ? dy : -dy);
    const room = Math.min(east ? natural.w - ax : ax, south ? natural.h - ay : ay);
    const size = clamp(Math.round(from.size + grow), minSize(), room);
    return { x: east ? ax : ax - size, y: south ? ay : ay - size, size };
  }

  function render() {
    if (!natural || !crop) return;
    const s = cssPxPerImagePx();
    box.style.left = `${crop.x * s}px`;
    box.style.top = `${crop.y * s}px`;
    box.style.width = `${crop.size * s}px`;
    box.style.height = `${crop.size * s}px`;
    // The shade covers the photo but for a square hole: the outline of the photo, then the
    // square's, filled even-odd.
    const l = (100 * crop.x) / natural.w;
    const r = (100 * (crop.x + crop.size)) / natural.w;
    const t = (100 * crop.y) / natural.h;
    const b = (100 * (crop.y + crop.size)) / natural.h;
    shade.style.clipPath = 'polygon(evenodd, 0 0, 100% 0, 100% 100%, 0 100%, 0 0, ' +
      `${l}% ${t}%, ${r}% ${t}%, ${r}% ${b}%, ${l}% ${b}%, ${l}% ${t}%)`;
    cropValue.value = `${crop.size} × ${crop.size} pixels from x ${crop.x}, y ${crop.y} ` +
      `of ${natural.w} × ${natural.h}`;
  }

  // The photo fills the column and at most most of the screen's height, scaled up when small
  // (a tiny crop square is hard to move); its aspect ratio is kept, so one factor maps CSS
  // pixels to image pixels.
  const MAX_UPSCALE = 4;
  function fit() {
    if (!natural) return;
    const width = cropSection.clientWidth;
    const height = 0.7 * window.innerHeight;
    const k = Math.min(width / natural.w, height / natural.h, MAX_UPSCALE);
    photo.style.width = `${Math.floor(natural.w * k)}px`;
  }

  new ResizeObserver(() => {
    fit();
    render();
  }).observe(cropSection);

  box.addEventListener('pointerdown', (e) => {
    if (drag || !crop || e.button !== 0) return;
    e.preventDefault();
    box.focus({ preventScroll: true });
    box.setPointerCapture(e.pointerId);
    drag = {
      pointer: e.pointerId,
      corner: e.target.dataset.corner || null,
      x: e.clientX,
      y: e.clientY,
      from: crop,
      scale: cssPxPerImagePx(),
    };
    box.classList.add('dragging');
  });

  box.addEventListener('pointermove', (e) => {
    if (!drag || e.pointerId !== drag.pointer) return;
    const dx = (e.clientX - drag.x) / drag.scale;
    const dy = (e.clientY - drag.y) / drag.scale;
    crop = drag.corner ? resized(drag.from, drag.corner, dx, dy) : moved(drag.from, dx, dy);
    render();
  });

  const endDrag = (e) => {
    if (!drag || e.pointerId !== drag.pointer) return;
    drag = null;
    box.classList.remove('dragging');
  };
  box.addEventListener('pointerup', endDrag);
  box.addEventListener('pointercancel', endDrag);

  // Arrow keys move the square; with Shift, right and up grow it and left and down shrink it.
  const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  box.addEventListener('keydown', (e) => {
    const arrow = ARROWS[e.key];
    if (!arrow || !crop) return;
    e.preventDefault();
    const step = Math.max(1, Math.round(Math.min(natural.w, natural.h) / 50));
    if (e.shiftKey) {
      const grow = (arrow[0] || -arrow[1]) * step;
      crop = resized(crop, 'se', grow, grow);
    } else {
      crop = moved(crop, arrow[0] * step, arrow[1] * step);
    }
    render();
  });

  autoCrop.addEventListener('change', () => {
    for (const el of [box, shade, cropValue, $('crop-help')]) el.hidden = autoCrop.checked;
  });

  // ---- choosing a photo --------------------------------------------------------------------

  fileInput.addEventListener('change', () => {
    showError('');
    natural = null;
    crop = null;
    cropSection.hidden = true;
    noPreview.hidden = true;
    submit.disabled = true;
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
    const file = fileInput.files[0];
    if (!file) return;
    objectUrl = URL.createObjectURL(file);
    photo.src = objectUrl;
  });

  photo.addEventListener('load', () => {
    if (!photo.naturalWidth || !photo.naturalHeight) {
      photo.dispatchEvent(new Event('error'));
      return;
    }
    natural = { w: photo.naturalWidth, h: photo.naturalHeight };
    const size = Math.round(0.8 * Math.min(natural.w, natural.h));
    crop = {
      x: Math.floor((natural.w - size) / 2),
      y: Math.floor((natural.h - size) / 2),
      size,
    };
    cropSection.hidden = false;
    fit();
    render();
    submit.disabled = job !== null && !job.finished;
  });

  // A file the browser cannot draw (TIFF, say) may still be one the service reads: it is
  // sent without a box, and the service takes the central square.
  photo.addEventListener('error', () => {
    if (!fileInput.files[0]) return;
    noPreview.hidden = false;
    submit.disabled = job !== null && !job.finished;
  });

  // ---- talking to the API ------------------------------------------------------------------

  // Retry-After is either seconds or an HTTP date.
  function retryAfterSeconds(res) {
    const value = res.headers.get('Retry-After');
    if (!value) return null;
    if (/^\d+$/.test(value.trim())) return Number(value);
    const at = Date.parse(value);
    return Number.isNaN(at) ? null : Math.max(0, Math.round((at - Date.now()) / 1000));
  }

  function inWords(seconds) {
    if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
    if (seconds < 90 * 60) return `${Math.round(seconds / 60)} minutes`;
    return `${Math.round(seconds / 3600)} hours`;
  }

  // One sentence for a failed answer: what happened, what to do, and the API's own words.
  async function describe(res) {
    let detail = '';
    try {
      const text = await res.text();
      try {
        const body = JSON.parse(text);
        detail = body && typeof body.error === 'string' ? body.error : '';
      } catch {
        detail = text.trim().slice(0, 200);
      }
    } catch {
      detail = '';
    }
    const wait = retryAfterSeconds(res);
    const later = wait === null ? 'Please try again later.' : `Please try again in ${inWords(wait)}.`;
    let lead;
    switch (res.status) {
      case 400:
      case 422:
        lead = 'The service cannot use this photo or crop.';
        break;
      case 403:
        lead = 'The service refused this request.';
        break;
      case 404:
        lead = 'This job is no longer on the service (deleted or expired).';
        break;
      case 413:
        lead = 'This photo is too large to upload; try a smaller one.';
        break;
      case 429:
        lead = `Too many uploads from your address. ${later}`;
        break;
      case 503:
        lead = `The service is busy. ${later}`;
        break;
      default:
        lead = `The service answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}.`;
    }
    return detail ? `${lead} (${detail})` : lead;
  }

  function cropField() {
    if (autoCrop.checked) return 'auto';
    if (!crop) return null;
    return JSON.stringify({ x: crop.x, y: crop.y, w: crop.size, h: crop.size });
  }

  function showCropView() {
    const figure = cropView.parentElement;
    figure.hidden = !natural;
    if (!natural) return;
    cropViewImage.src = objectUrl;
    const caption = figure.querySelector('figcaption');
    if (crop && !autoCrop.checked) {
      // The container is square, so percentages of its width place the crop exactly.
      const k = 100 / crop.size;
      cropViewImage.style.width = `${natural.w * k}%`;
      cropViewImage.style.left = `${-crop.x * k}%`;
      cropViewImage.style.top = `${-crop.y * k}%`;
      cropView.classList.remove('whole');
      caption.textContent = 'Your crop';
    } else {
      cropViewImage.style.width = '';
      cropViewImage.style.left = '';
      cropViewImage.style.top = '';
      cropView.classList.add('whole');
      caption.textContent = 'Your photo (the service finds the face)';
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = fileInput.files[0];
    if (!file) {
      showError('Choose a photo first.');
      fileInput.focus();
      return;
    }
    if (!email.checkValidity()) {
      showError('That email address does not look right; correct it or leave it empty.');
      email.focus();
      return;
    }
    const body = new FormData();
    body.append('image', file, file.name);
    const cropText = cropField();
    if (cropText !== null) body.append('crop', cropText);
    if (direction.value) body.append('direction', direction.value);
    if (email.value.trim()) body.append('email', email.value.trim());

    showError('');
    submit.disabled = true;
    showStatus('Uploading…');
    let res;
    try {
      res = await fetch(apiUrl('/api/v1/jobs'), { method: 'POST', body });
    } catch {
      showStatus('');
      showError('Could not reach the service. Check your connection and try again.');
      submit.disabled = false;
      return;
    }
    if (res.status !== 202) {
      showStatus('');
      showError(await describe(res));
      submit.disabled = false;
      return;
    }
    const accepted = await res.json();
    // The new job replaces the previous one on the page (which had finished: Upload waits).
    stopJob();
    job = {
      id: accepted.id,
      statusUrl: fromApi(accepted.status_url),
      deleteToken: accepted.delete_token,
      delay: POLL_FIRST_MS,
      last: '',
      timer: null,
      finished: false,
    };
    showCropView();
    result.hidden = true;
    download.hidden = true;
    deleteButton.disabled = false;
    jobSection.hidden = false;
    showStatus('Uploaded. Waiting for a place in the queue…');
    poll(job, 0);
  });

  function poll(current, delay) {
    current.timer = window.setTimeout(() => check(current), delay);
  }

  function stopJob() {
    if (job && job.timer !== null) window.clearTimeout(job.timer);
    job = null;
  }

  function finish(current) {
    current.finished = true;
    submit.disabled = !fileInput.files[0];
  }

  async function check(current) {
    let res;
    try {
      res = await fetch(current.statusUrl, { cache: 'no-store' });
    } catch {
      if (current !== job) return;
      current.delay = Math.min(current.delay * 2, POLL_MAX_MS);
      showStatus('Lost the connection to the service; trying again…');
      poll(current, current.delay);
      return;
    }
    if (current !== job) return;
    if (res.status === 429 || res.status === 503) {
      const wait = retryAfterSeconds(res);
      current.delay = wait === null ? Math.min(current.delay * 2, POLL_MAX_MS) : wait * 1000;
      poll(current, current.delay);
      return;
    }
    if (!res.ok) {
      const message = await describe(res);
      if (current !== job) return;
      showStatus('');
      showError(message);
      finish(current);
      return;
    }
    const state = await res.json();
    if (current !== job) return;
    switch (state.status) {
      case 'queued':
        // Position 1 is the job the next free worker takes.
        showStatus(typeof state.position !== 'number' ? 'Queued.'
          : state.position <= 1 ? 'Queued: you are next.'
            : `Queued: number ${state.position} in line.`);
        break;
      case 'running':
        showStatus('Making your picture…');
        break;
      case 'done':
        showResult(current, fromApi(state.result_url));
        return;
      case 'failed':
        showStatus('');
        showError(`The picture could not be made: ${state.error || 'the service gave no reason'}.`);
        finish(current);
        return;
      default:
        showStatus(`The service says: ${state.status}`);
    }
    const seen = `${state.status} ${state.position}`;
    current.delay = seen === current.last
      ? Math.min(current.delay * 1.5, POLL_MAX_MS)
      : POLL_FIRST_MS;
    current.last = seen;
    poll(current, current.delay);
  }

  function showResult(current, url) {
    finish(current);
    showStatus('Done. Loading your picture…');
    resultImage.onload = () => {
      if (current !== job) return;
      result.hidden = false;
      download.href = url;
      download.download = `selfie2anime-${current.id}.png`;
      download.hidden = false;
      const exp = Number(new URL(url).searchParams.get('exp'));
      const until = exp > 0 ? ` The link works until ${new Date(exp * 1000).toLocaleString()}.` : '';
      showStatus(`Done.${until}`);
    };
    resultImage.onerror = () => {
      if (current !== job) return;
      showStatus('');
      showError('The result is ready but could not be loaded; its link may have expired.');
    };
    resultImage.src = url;
  }

  deleteButton.addEventListener('click', async () => {
    const current = job;
    if (!current) return;
    deleteButton.disabled = true;
    let res;
    try {
      res = await fetch(apiUrl(`/api/v1/jobs/${encodeURIComponent(current.id)}`), {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${current.deleteToken}` },
      });
    } catch {
      showError('Could not reach the service to delete; try again.');
      deleteButton.disabled = false;
      return;
    }
    if (!res.ok && res.status !== 404) {
      showError(await describe(res));
      deleteButton.disabled = false;
      return;
    }
    stopJob();
    showError('');
    resultImage.removeAttribute('src');
    download.removeAttribute('href');
    jobSection.hidden = true;
    showStatus(res.ok
      ? 'Deleted: your photo and its result are gone from the service.'
      : 'Already gone: the service no longer has this job.');
    submit.disabled = !fileInput.files[0];
  });
})();
